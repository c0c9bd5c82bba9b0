"""Second factor (blueprint ``mfa``): the login challenge and the "Mon compte" pages.

Login (the login flow, state ``second_factor``, set by ``idp.flows.login`` after the
password):
- ``/login/mfa``: the 6-digit code of the authenticator app (``mfa.challenge``);
- ``/login/mfa/secours``: a recovery code instead (``mfa.recovery``);
- ``/login/mfa/activer``: enrolment, for a user who must have a second factor (population
  policy, or a relying party asking ``acr_values=eidas2``) and has none yet. Trust on first
  use: whoever passed the password enrols; the owner is told by e-mail.
Wrong codes count per flow (``MAX_FAILURES``, counted before the check, atomically in the
key-value store); then the flow ends and the login starts again.

A completed second factor signs in with ``amr=["pwd", "otp"]`` and ``acr="eidas2"``:
RFC 8176 "otp" for the TOTP code, and also for a recovery code (a single-use password the
user holds, printed or stored; the audit trail records which one was used).

"Mon compte" (``/compte/mfa/``): status, enabling (or replacing the app), new recovery
codes and disabling. Changes need a recent password (``recent_auth_required``), disabling
also a current code, and each change is notified by e-mail (``mfa_changed``).
"""

from __future__ import annotations

import functools

from flask import (Blueprint, current_app, flash, g, redirect, render_template, request,
                   session, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from ..persistence.models import User, utcnow
from ..security import mfa
from ..services import audit, services
from ..web.auth import login_required, recent_auth_required, sign_in
from ..web.forms import BaseForm
from ..persistence.flows import Flow, FlowError, delete_flow, load_flow
from ..web.common import absolute_url, add_error, format_when, send_templated_email

bp = Blueprint("mfa", __name__)

MAX_FAILURES = 5  # wrong codes per login flow, then the login starts again
ACCOUNT_FAILURE_WINDOW = 15 * 60  # wrong codes on the account pages, per user
LOGIN_STATE = "second_factor"
AMR = ["pwd", "otp"]
ACR = "eidas2"


# -- forms ----------------------------------------------------------------------------------
def _code_field(label, required_message, max_length: int, **render_kw) -> StringField:
    return StringField(label, validators=[
        DataRequired(message=required_message),
        Length(max=max_length, message=_l("Ce code est trop long."))],
        render_kw={"autocomplete": "one-time-code", "spellcheck": "false", **render_kw})


class TotpForm(BaseForm):
    code = _code_field(_l("Code à 6 chiffres"),
                       _l("Saisissez le code à 6 chiffres affiché par votre application."),
                       32, inputmode="numeric", size="8")


class RecoveryCodeForm(BaseForm):
    code = _code_field(_l("Code de secours"), _l("Saisissez un de vos codes de secours."), 64,
                       autocapitalize="characters", size="16")


class AnyCodeForm(BaseForm):
    code = _code_field(_l("Code de vérification"),
                       _l("Saisissez le code de votre application ou un code de secours."),
                       64, size="16")


class ConfirmForm(BaseForm):
    pass


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


# -- helpers --------------------------------------------------------------------------------
def _issuer_name() -> str:
    return services().settings.service_name


def _population_requires(user: User) -> bool:
    population = services().settings.population(user.population)
    return bool(population is not None and population.mfa_required)


def _notify(user: User, action: str) -> None:
    when = format_when(utcnow(), user.locale)
    endpoint = "recovery.start" if "recovery.start" in current_app.view_functions \
        else "login.start"
    send_templated_email(user.email, "mfa_changed", user.locale, action=action, when=when,
                         recovery_url=absolute_url(endpoint))


def _enrolment_page(user: User, form, action_url: str, status: int = 200, **context):
    svc = services()
    credential = mfa.pending_credential(svc.db.session, user, svc.secret_key)
    svc.db.session.commit()
    secret = mfa.unseal(svc.secret_key, user.id, credential.secret)
    uri = mfa.provisioning_uri(secret, user.email, _issuer_name())
    return render_template("mfa/enrol.html", form=form, action_url=action_url,
                           qr_code=mfa.qr_data_uri(uri), manual_key=mfa.group_key(secret),
                           account=user.email, issuer=_issuer_name(), step=mfa.STEP,
                           digits=mfa.DIGITS, **context), status


def _confirm_enrolment(user: User, form) -> list[str] | None:
    """Check the first code against the pending secret; on success the credential is
    confirmed, recovery codes are made (returned, to show once) and the owner told."""
    svc = services()
    db = svc.db.session
    credential = mfa.pending_credential(db, user, svc.secret_key)
    result = mfa.check_totp(db, credential, form.code.data, svc.secret_key)
    if result != mfa.TotpResult.OK:
        add_error(form.code, _("Ce code est incorrect. Vérifiez que l'heure de votre "
                               "téléphone est juste et saisissez le code affiché "
                               "actuellement."))
        db.commit()
        return None
    was_enabled = user.mfa_enabled
    mfa.confirm_credential(db, user, credential)
    codes = mfa.new_recovery_codes(db, user, svc.secret_key)
    audit("mfa.enabled", user_id=user.id, method="totp", replaced=was_enabled)
    db.commit()
    _notify(user, "changed" if was_enabled else "enabled")
    return codes


# -- login: the challenge -------------------------------------------------------------------
class _Restart(Exception):
    pass


def _failure_key(flow: Flow) -> str:
    return f"mfa-failures:flow:{flow.id}"


def _load_login() -> tuple[Flow, User]:
    db = services().db.session
    try:
        flow = load_flow(db, request.args.get("flow"), "login", session.browser_id)
    except FlowError:
        raise _Restart() from None
    user = db.get(User, flow.user_id) if flow.user_id else None
    if flow.state != LOGIN_STATE or user is None or user.disabled:
        raise _Restart()
    return flow, user


def _restart_login(flow: Flow | None = None, message: str | None = None):
    params = {}
    if flow is not None:
        params = {"return_to": flow.return_to, "acr": flow.data.get("acr"),
                  "client_id": flow.data.get("client_id")}
        services().kv.delete(_failure_key(flow))
        delete_flow(services().db.session, flow)
        services().db.session.commit()
    if current_user.is_authenticated:
        params["force"] = 1
    if message:
        flash(message, "error")
    return redirect(url_for("login.start", **{k: v for k, v in params.items() if v}))


def _login_view(view):
    @functools.wraps(view)
    def wrapper():
        try:
            flow, user = _load_login()
        except _Restart:
            return _restart_login(message=_("Votre demande de connexion a expiré. "
                                            "Reconnectez-vous."))
        return view(flow, user)
    return wrapper


def _count_attempt(flow: Flow) -> int:
    """Count one attempt before checking it (atomic: parallel guesses are counted too)."""
    ttl = max(60, int((flow.expires_at - utcnow()).total_seconds()))
    return services().kv.incr(_failure_key(flow), ttl)


def _too_many(flow: Flow, user: User):
    audit("login.failure", outcome="failure", user_id=user.id, reason="mfa_too_many_attempts")
    services().db.session.commit()
    return _restart_login(flow, _("Trop de codes incorrects. Pour votre sécurité, "
                                  "reconnectez-vous."))


def _complete_login(flow: Flow, user: User, method: str, page=None):
    """Second factor done: sign in (new session id) and go where the user was going."""
    db = services().db.session
    target = flow.return_to or url_for("account.index")
    services().kv.delete(_failure_key(flow))
    delete_flow(db, flow)
    audit("login.success", user_id=user.id, method=method)
    sign_in(user, amr=list(AMR), acr=ACR)
    return page(target) if page is not None else redirect(target)


def _challenge_page(flow: Flow, user: User, form, template: str, check):
    """The two login challenges: count the attempt, check it with ``check(code)``
    (returns ``(method, None)`` on success, ``(method, (reason, message))`` otherwise),
    sign in, or explain; the login restarts after ``MAX_FAILURES`` wrong codes."""
    if request.method == "POST" and form.validate_on_submit():
        attempt = _count_attempt(flow)
        if attempt > MAX_FAILURES:
            return _too_many(flow, user)
        method, failure = check(form.code.data)
        if failure is None:
            return _complete_login(flow, user, method)
        reason, message = failure
        audit("mfa.challenge_failed", outcome="failure", user_id=user.id, method=method,
              reason=reason, attempt=attempt)
        services().db.session.commit()
        if attempt >= MAX_FAILURES:
            return _too_many(flow, user)
        add_error(form.code, message)
    status = 200 if request.method == "GET" else 400
    return render_template(template, form=form, flow=flow), status


@bp.route("/login/mfa", methods=["GET", "POST"])
@_login_view
def challenge(flow: Flow, user: User):
    svc = services()
    credential = mfa.active_credential(svc.db.session, user)
    if credential is None:
        return redirect(url_for("mfa.login_enrol", flow=flow.id))

    def check(code):
        result = mfa.check_totp(svc.db.session, credential, code, svc.secret_key)
        if result == mfa.TotpResult.OK:
            return "otp", None
        if result == mfa.TotpResult.REPLAYED:
            return "totp", (result, _("Ce code a déjà été utilisé. Attendez que votre "
                                      "application affiche le code suivant."))
        return "totp", (result, _("Ce code est incorrect. Saisissez le code affiché "
                                  "actuellement par votre application."))
    return _challenge_page(flow, user, TotpForm(), "mfa/challenge.html", check)


@bp.route("/login/mfa/secours", methods=["GET", "POST"])
@_login_view
def recovery(flow: Flow, user: User):
    svc = services()
    db = svc.db.session
    if mfa.active_credential(db, user) is None:
        return redirect(url_for("mfa.login_enrol", flow=flow.id))

    def check(code):
        if not mfa.use_recovery_code(db, user, code, svc.secret_key):
            return "recovery_code", ("wrong", _("Ce code de secours est incorrect ou a déjà "
                                                "été utilisé."))
        left = mfa.recovery_codes_left(db, user)
        audit("mfa.recovery_code_used", user_id=user.id, codes_left=left)
        if left <= 3:
            flash(_("Il vous reste %(count)d code(s) de secours. Générez-en de nouveaux "
                    "depuis votre espace « Mon compte ».", count=left), "error")
        return "recovery_code", None
    return _challenge_page(flow, user, RecoveryCodeForm(), "mfa/recovery.html", check)


@bp.route("/login/mfa/activer", methods=["GET", "POST"])
@_login_view
def login_enrol(flow: Flow, user: User):
    """A user who must use a second factor and has none sets it up now."""
    db = services().db.session
    if mfa.active_credential(db, user) is not None:
        return redirect(url_for("mfa.challenge", flow=flow.id))
    form = TotpForm()
    reason = "population" if _population_requires(user) else "service"
    action_url = url_for("mfa.login_enrol", flow=flow.id)
    if request.method == "POST" and form.validate_on_submit():
        attempt = _count_attempt(flow)
        if attempt > MAX_FAILURES:
            return _too_many(flow, user)
        codes = _confirm_enrolment(user, form)
        if codes is None and attempt >= MAX_FAILURES:
            return _too_many(flow, user)
        if codes is not None:
            return _complete_login(flow, user, "otp", page=lambda target: render_template(
                "mfa/recovery_codes.html", codes=codes, continue_url=target, enrolled=True))
    status = 200 if request.method == "GET" else 400
    return _enrolment_page(user, form, action_url, status, reason=reason, login_flow=flow)


# -- "Mon compte" ---------------------------------------------------------------------------
def _account_attempt_ok(user: User) -> bool:
    return services().kv.incr(f"mfa-failures:user:{user.id}",
                              ACCOUNT_FAILURE_WINDOW) <= MAX_FAILURES


@bp.route("/compte/mfa/")
@login_required
def manage():
    db = services().db.session
    user = g.user
    return render_template("mfa/manage.html", user=user, enabled=user.mfa_enabled,
                           required=_population_requires(user),
                           codes_left=mfa.recovery_codes_left(db, user),
                           form=ConfirmForm())


@bp.route("/compte/mfa/activer", methods=["GET", "POST"])
@recent_auth_required
def enable():
    user = g.user
    form = TotpForm()
    if request.method == "POST" and form.validate_on_submit():
        codes = _confirm_enrolment(user, form)
        if codes is not None:
            return render_template("mfa/recovery_codes.html", codes=codes,
                                   continue_url=url_for("mfa.manage"), enrolled=True)
    status = 200 if request.method == "GET" else 400
    return _enrolment_page(user, form, url_for("mfa.enable"), status,
                           reason="account", replacing=user.mfa_enabled)


def _mfa_enabled_required(view):
    """Pages about an enabled second factor: a recent password, and back to the
    management page when there is none."""
    @functools.wraps(view)
    @recent_auth_required
    def wrapper():
        if not g.user.mfa_enabled:
            return redirect(url_for("mfa.manage"))
        svc = services()
        return view(svc, svc.db.session, g.user)
    return wrapper


@bp.route("/compte/mfa/codes-de-secours", methods=["GET", "POST"])
@_mfa_enabled_required
def regenerate(svc, db, user: User):
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        codes = mfa.new_recovery_codes(db, user, svc.secret_key)
        audit("mfa.recovery_codes_renewed", user_id=user.id)
        db.commit()
        _notify(user, "recovery_codes")
        return render_template("mfa/recovery_codes.html", codes=codes,
                               continue_url=url_for("mfa.manage"), enrolled=False)
    return render_template("mfa/regenerate.html", form=form,
                           codes_left=mfa.recovery_codes_left(db, user))


@bp.route("/compte/mfa/desactiver", methods=["GET", "POST"])
@_mfa_enabled_required
def disable(svc, db, user: User):
    if _population_requires(user):
        return render_template("mfa/disable.html", form=None, required=True), 403
    form = AnyCodeForm()
    if request.method == "POST" and form.validate_on_submit():
        if not _account_attempt_ok(user):
            add_error(form.code, _("Trop de codes incorrects. Réessayez dans "
                                   "%(minutes)d minutes.",
                                   minutes=ACCOUNT_FAILURE_WINDOW // 60))
        elif _check_any_code(user, form.code.data):
            mfa.remove_all(db, user)
            audit("mfa.disabled", user_id=user.id)
            db.commit()
            _notify(user, "disabled")
            flash(_("La double authentification est désactivée."), "success")
            return redirect(url_for("mfa.manage"), code=303)
        else:
            audit("mfa.challenge_failed", outcome="failure", user_id=user.id,
                  context="disable")
            db.commit()
            add_error(form.code, _("Ce code est incorrect ou a déjà été utilisé."))
    status = 200 if request.method == "GET" else 400
    return render_template("mfa/disable.html", form=form, required=False), status


def _check_any_code(user: User, raw: str) -> bool:
    """A current TOTP code, or a recovery code (used up)."""
    svc = services()
    db = svc.db.session
    if mfa.normalise_totp(raw) is not None:
        credential = mfa.active_credential(db, user)
        return credential is not None and \
            mfa.check_totp(db, credential, raw, svc.secret_key) == mfa.TotpResult.OK
    if mfa.use_recovery_code(db, user, raw, svc.secret_key):
        audit("mfa.recovery_code_used", user_id=user.id, context="disable",
              codes_left=mfa.recovery_codes_left(db, user))
        return True
    return False


"""The mutualised "mot de passe perdu" flow (one ``recovery`` flow per attempt).

1. ``/mot-de-passe-perdu``: who are you? (``settings.populations``). Method ``code`` goes
   on; ``redirect`` explains where the staff directory resets passwords; ``support``
   shows the help page.
2. ``/mot-de-passe-perdu/adresse``: the e-mail address (and the anti-robot check).
3. A security code (``T3A8XQ``) is sent by e-mail with a link that fills it in, or by SMS
   when the account prefers SMS, its number is verified and so is its login address (an
   account created with someone else's address must not route its recovery to its
   creator's phone). When the SMS cannot go (its caps, the budget, the gateway), the code
   goes by e-mail, with the e-mail's lifetime, and the e-mail says why. The answer is the
   same whether or not the account exists: for an unknown address a code is stored too
   (bound to no account, never sent), so that the next page behaves identically
   (attempts, expiry), and the address is counted against the e-mail caps all the same
   (``messaging.email_per_destination``).
   The link carries the code in its fragment (``#code=``), which browsers do not send:
   a script of the page fills the field with it; without JavaScript the code is typed.
4. ``/mot-de-passe-perdu/code``: the code, ``verification.max_attempts`` tries; a code of
   the wrong shape is refused without using one.
5. ``/mot-de-passe-perdu/nouveau``: the new password, twice. Then every SSO session and
   grant of the account ends, and the owner is told by e-mail.
6. ``/mot-de-passe-perdu/termine``: "Continuer" goes back where the user was going.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
import time

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from ..identity import sso as sso_service
from ..identity import users
from ..messaging.base import Purpose
from ..identity.grants import revoke_user_grants
from ..security import lockout, message_guard
from ..persistence import consumables
from ..persistence.consumables import Outcome
from ..persistence.models import Consumable, User, utcnow
from ..services import audit, services
from ..web.common import (absolute_url, add_error, captcha_error_markup, captcha_errors,
                          check_new_password, checked_email, format_when, has_errors,
                          policy_hint, send_templated_email, send_templated_sms)
from ..web.forms import BaseForm, email_field, password_field
from ..persistence.flows import Flow, FlowError, create_flow, load_flow, safe_return_to

log = logging.getLogger(__name__)

bp = Blueprint("recovery", __name__, url_prefix="/mot-de-passe-perdu")

RECOVERY_CODE = "recovery_code"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
RECOVERY_FLOW_TTL = 30 * 60
# Once the code is accepted, the new password must be chosen within this time.
PASSWORD_STEP_TTL = 15 * 60
# A flow outlives its code by this much, so that an expired code is reported as such.
FLOW_MARGIN = 15 * 60
MAX_SENDS = 4  # the first code and three new ones, per flow

# Observed duration of a real send, imitated when the address has no account
# (exponential moving average, per process).
_send_seconds = {"avg": 0.0}


class PopulationForm(BaseForm):
    population = StringField(_l("Votre situation"))


class EmailForm(BaseForm):
    email = email_field()


class CodeForm(BaseForm):
    code = StringField(_l("Code de sécurité"), validators=[
        DataRequired(message=_l("Saisissez le code de sécurité reçu.")),
        Length(max=32, message=_l("Ce code est trop long."))],
        render_kw={"autocomplete": "one-time-code", "spellcheck": "false",
                   "autocapitalize": "characters", "size": "10",
                   "data-fragment-field": "code"})


class ResendForm(BaseForm):
    pass


class NewPasswordForm(BaseForm):
    password = password_field(_l("Nouveau mot de passe"), autocomplete="new-password")
    password_confirm = password_field(_l("Confirmation du nouveau mot de passe"),
                                      autocomplete="new-password")


def new_code(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def normalise_code(raw: str) -> str:
    return "".join((raw or "").split()).replace("-", "").upper()


def shape_error(code: str, length: int) -> str | None:
    """Why ``code`` (normalised) cannot be a security code, None when it can: such a code
    is refused without using up a try."""
    if len(code) != length:
        return _("Le code de sécurité compte %(length)d caractères, par exemple T3A8XQ.",
                 length=length)
    if any(char not in CODE_ALPHABET for char in code):
        return _("Vérifiez le code : il ne contient que des lettres et des chiffres de 2 à 9 "
                 "(jamais 0, O, 1, I ni L).")
    return None


def _code_lookup(flow: Flow) -> str:
    """Bound to the flow and the account (or to no account: ``-``)."""
    return f"recovery:{flow.id}:{flow.user_id or '-'}"


# -- flow plumbing ---------------------------------------------------------------------
class Restart(Exception):
    def __init__(self, title: str, message: str) -> None:
        self.title, self.message = title, message


def _restart_page(title: str, message: str, return_to: str | None = None):
    return render_template("recovery/restart.html", title=title, message=message,
                           restart_url=url_for("recovery.start", return_to=return_to)), 400


def _load(*states: str) -> Flow:
    db = services().db.session
    try:
        flow = load_flow(db, request.args.get("flow"), "recovery", session.browser_id)
    except FlowError as exc:
        if str(exc) == "other browser":
            raise Restart(_("Demande ouverte dans un autre navigateur"),
                          _("Cette page doit être ouverte dans le navigateur où vous avez "
                            "demandé la réinitialisation. Vous pouvez aussi y saisir le code "
                            "reçu, ou recommencer ici.")) from exc
        raise Restart(_("Demande expirée"),
                      _("Cette demande de réinitialisation a expiré ou n'existe pas. "
                        "Recommencez.")) from exc
    if flow.state == "locked":
        raise Restart(_("Trop d'essais"), _("Le code a été saisi trop de fois sans succès. "
                                           "Pour votre sécurité, recommencez la demande."))
    if flow.state not in states:
        raise Restart(_("Étape indisponible"),
                      _("Cette étape de la réinitialisation n'est plus disponible. "
                        "Recommencez."))
    return flow


def _guarded(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Restart as restart:
            return _restart_page(restart.title, restart.message)
    return wrapper


def _update(flow: Flow, **values) -> None:
    flow.data = {**(flow.data or {}), **values}


# -- step 1: who are you ---------------------------------------------------------------
@bp.route("", methods=["GET", "POST"])
@_guarded
def start():
    svc = services()
    db = svc.db.session
    populations = svc.settings.populations
    if request.args.get("flow") is None:
        return_to = safe_return_to(request.args.get("return_to"))
        flow = create_flow(db, "recovery", state="choose_population",
                           browser=session.browser_id, return_to=return_to,
                           ttl=RECOVERY_FLOW_TTL)
        db.commit()
        form = PopulationForm(formdata=None)
        return _render_population(flow, form, populations, None, 200)
    flow = _load("choose_population")
    form = PopulationForm()
    if request.method == "GET":
        return _render_population(flow, PopulationForm(formdata=None), populations, None, 200)
    form.validate()
    chosen = svc.settings.population(form.population.data or "")
    if chosen is None:
        add_error(form.population, _("Choisissez la situation qui vous correspond."))
    if has_errors(form):
        return _render_population(flow, form, populations, form.population.data, 400)
    _update(flow, population=chosen.key)
    if chosen.recovery_method == "code":
        flow.state = "email"
        target = "recovery.email"
    elif chosen.recovery_method == "redirect":
        flow.state = "redirected"
        target = "recovery.directory"
    else:
        flow.state = "support"
        target = "recovery.support"
    db.commit()
    return redirect(url_for(target, flow=flow.id), code=303)


def _render_population(flow, form, populations, chosen, status):
    return render_template("recovery/population.html", flow=flow, form=form,
                           populations=populations, chosen=chosen), status


def _population_page(state: str, template: str, **context):
    """The page of a population that does not recover here (another directory, support)."""
    flow = _load(state)
    population = services().settings.population(flow.data.get("population", ""))
    return render_template(template, flow=flow, population=population,
                           back_url=url_for("recovery.start", return_to=flow.return_to),
                           **context)


@bp.route("/annuaire")
@_guarded
def directory():
    return _population_page("redirected", "recovery/directory.html")


@bp.route("/assistance")
@_guarded
def support():
    return _population_page("support", "recovery/support.html",
                            support=services().settings.support)


# -- step 2 and 3: the address, then a code ------------------------------------------------
@bp.route("/adresse", methods=["GET", "POST"])
@_guarded
def email():
    svc = services()
    db = svc.db.session
    flow = _load("email")
    form = EmailForm()
    if request.method == "GET":
        return _render_email(flow, EmailForm(formdata=None), [], 200)
    form.validate()
    captcha_failures = captcha_errors()
    address = checked_email(form.email)
    if has_errors(form) or captcha_failures:
        return _render_email(flow, form, captcha_failures, 400)
    # Counted whether or not the address has an account: the same answer either way.
    refusal = svc.messenger.check_email(address, Purpose.SIGN_IN)
    if refusal:
        add_error(form.email, refusal)
        audit("recovery.refused", outcome="failure", reason="email_cap")
        db.commit()
        return _render_email(flow, form, [], 400)

    user = users.find_by_email(db, address)
    if user is not None and not _may_recover(user):
        user = None
    flow.user_id = user.id if user is not None else None
    flow.state = "code"
    _update(flow, email=address, sends=0)
    _send_code(flow, user)
    db.commit()
    return redirect(url_for("recovery.code", flow=flow.id), code=303)


def _may_recover(user: User) -> bool:
    if user.disabled:
        return False
    population = services().settings.population(user.population)
    return population is None or population.recovery_method == "code"


def _render_email(flow, form, captcha_failures, status):
    svc = services()
    extra = captcha_error_markup(captcha_failures[0]) if captcha_failures else None
    return render_template("recovery/email.html", flow=flow, form=form,
                           captcha=svc.captcha.challenge(), captcha_errors=captcha_failures,
                           captcha_extra=extra), status


def _channel(user: User | None) -> str:
    """"sms" when the account prefers SMS and both its number and its login address are
    verified, else "email"."""
    if user is not None and user.preferred_contact == "sms" and user.phone_number \
            and user.phone_number_verified and user.email_verified:
        return "sms"
    return "email"


def _issue(flow: Flow, user: User | None, channel: str) -> tuple[str, int]:
    """A new code for ``channel`` (voiding the previous one), and its lifetime in minutes."""
    svc = services()
    verification = svc.settings.verification
    ttl = verification.recovery_code_ttl_sms if channel == "sms" \
        else verification.recovery_code_ttl_email
    code = new_code(verification.code_length)
    destination = None
    if user is not None:
        destination = f"sms:{user.phone_number}" if channel == "sms" else f"email:{user.email}"
    consumables.issue_code(svc.db.session, RECOVERY_CODE, _code_lookup(flow), code, ttl,
                           svc.secret_key, user_id=user.id if user is not None else None,
                           destination=destination)
    flow.expires_at = max(flow.expires_at, utcnow() + dt.timedelta(seconds=ttl + FLOW_MARGIN))
    svc.db.session.commit()
    return code, max(1, ttl // 60)


def _send_code(flow: Flow, user: User | None) -> None:
    """Issue a new code and send it to the account, if any: by SMS when it may go, else
    by e-mail (with the e-mail's lifetime, saying why when the SMS could not go).
    Without an account the same work is done, and the send's duration imitated."""
    svc = services()
    db = svc.db.session
    _update(flow, sends=flow.data.get("sends", 0) + 1, last_sent_at=time.time())
    channel = _channel(user)
    sms_unavailable = None
    if channel == "sms":
        message_guard.for_account(user.id)  # nobody is signed in: name the account throttled
        if svc.messenger.check_sms(user.phone_number, Purpose.SIGN_IN):
            channel, sms_unavailable = "email", "refused"
    code, minutes = _issue(flow, user, channel)
    started = time.monotonic()
    if user is None:
        audit("recovery.code_sent", known=False)
        db.commit()
        # Imitate the time a real send takes (no enumeration by timing).
        time.sleep(min(_send_seconds["avg"], 3.0) * (0.9 + 0.2 * secrets.randbelow(1000) / 1000))
        return
    sent = False
    if channel == "sms":
        sent = send_templated_sms(user.phone_number, RECOVERY_CODE, user.locale, code=code,
                                  expires_minutes=minutes)
        if not sent:
            # Another code, with the e-mail's lifetime: the SMS one may have gone after all.
            channel, sms_unavailable = "email", "failed"
            code, minutes = _issue(flow, user, channel)
    if not sent:
        sent = send_templated_email(
            user.email, RECOVERY_CODE, user.locale, code=code, expires_minutes=minutes,
            link=absolute_url("recovery.code", flow=flow.id) + "#code=" + code,
            sms_unavailable=sms_unavailable is not None)
    elapsed = time.monotonic() - started
    _send_seconds["avg"] = elapsed if not _send_seconds["avg"] \
        else 0.8 * _send_seconds["avg"] + 0.2 * elapsed
    if sent:
        audit("recovery.code_sent", user_id=user.id, known=True, channel=channel,
              **({"sms_unavailable": sms_unavailable} if sms_unavailable else {}))
    else:
        # Not shown: it would tell that the address has an account. The code page
        # offers to send a new code.
        log.warning("recovery code not sent (flow %s)", flow.id)
        audit("recovery.send_failed", outcome="failure", user_id=user.id, channel=channel)
    db.commit()


# -- step 4: the code ----------------------------------------------------------------------
@bp.route("/code", methods=["GET", "POST"])
@_guarded
def code():
    svc = services()
    db = svc.db.session
    flow = _load("code")
    if request.method == "GET":
        return _render_code(flow, CodeForm(formdata=None), None, 200)
    if request.form.get("resend"):
        return _resend(flow)
    form = CodeForm()
    form.validate()
    typed = normalise_code(form.code.data)
    if not has_errors(form):
        shape = shape_error(typed, svc.settings.verification.code_length)
        if shape:
            add_error(form.code, shape)
    if has_errors(form):
        return _render_code(flow, form, None, 400)
    max_attempts = svc.settings.verification.max_attempts
    result = consumables.verify_code(db, RECOVERY_CODE, _code_lookup(flow), typed,
                                     svc.secret_key, max_attempts)
    if result.ok and flow.user_id:
        flow.state = "password"
        flow.expires_at = utcnow() + dt.timedelta(seconds=PASSWORD_STEP_TTL)
        _update(flow, verified_at=time.time())
        audit("recovery.code_accepted", user_id=flow.user_id)
        db.commit()
        return redirect(url_for("recovery.password", flow=flow.id), code=303)
    if result.outcome is Outcome.OK:  # no account behind this flow: a wrong code
        result = consumables.ConsumeResult(Outcome.TOO_MANY_ATTEMPTS)
    if result.outcome is Outcome.WRONG_CODE:
        audit("recovery.code_rejected", outcome="failure", user_id=flow.user_id)
        db.commit()
        add_error(form.code, ngettext(
            "Ce code n'est pas le bon. Il vous reste %(num)d essai.",
            "Ce code n'est pas le bon. Il vous reste %(num)d essais.", result.attempts_left))
        form.code.data = ""
        return _render_code(flow, form, None, 400)
    if result.outcome is Outcome.EXPIRED:
        db.commit()
        add_error(form.code, _("Ce code a expiré. Demandez un nouveau code ci-dessous."))
        form.code.data = ""
        return _render_code(flow, form, None, 400)
    # Too many attempts (or a code voided meanwhile): this flow is over.
    flow.state = "locked"
    audit("recovery.locked", outcome="failure", user_id=flow.user_id)
    db.commit()
    return _restart_page(_("Trop d'essais"),
                         _("Le code a été saisi trop de fois sans succès. Pour votre "
                           "sécurité, recommencez la demande."), flow.return_to)


def _render_code(flow, form, notice, status):
    verification = services().settings.verification
    return render_template("recovery/code.html", flow=flow, form=form, notice=notice,
                           email=flow.data.get("email", ""), resend_form=ResendForm(formdata=None),
                           can_resend=flow.data.get("sends", 0) < MAX_SENDS,
                           length=verification.code_length,
                           ttl_email=verification.recovery_code_ttl_email // 60,
                           ttl_sms=verification.recovery_code_ttl_sms // 60), status


def _resend(flow: Flow):
    svc = services()
    db = svc.db.session
    form = ResendForm()
    if not form.validate():
        return _render_code(flow, CodeForm(formdata=None), None, 400)
    if flow.data.get("sends", 0) >= MAX_SENDS:
        return _render_code(flow, CodeForm(formdata=None),
                            _("Vous avez demandé trop de codes. Recommencez la demande plus "
                              "tard."), 400)
    wait = svc.settings.verification.resend_interval - (time.time() -
                                                        flow.data.get("last_sent_at", 0))
    if wait > 0:
        return _render_code(flow, CodeForm(formdata=None),
                            _("Patientez encore %(seconds)d secondes avant de demander un "
                              "nouveau code.", seconds=int(wait) + 1), 400)
    refusal = svc.messenger.check_email(flow.data.get("email", ""), Purpose.SIGN_IN)
    if refusal:
        return _render_code(flow, CodeForm(formdata=None), refusal, 400)
    user = db.get(User, flow.user_id) if flow.user_id else None
    _send_code(flow, user)
    db.commit()
    return _render_code(flow, CodeForm(formdata=None),
                        _("Un nouveau code a été envoyé. Le précédent ne fonctionne plus."),
                        200)


# -- step 5: the new password ------------------------------------------------------------------
@bp.route("/nouveau", methods=["GET", "POST"])
@_guarded
def password():
    svc = services()
    db = svc.db.session
    flow = _load("password")
    user = db.get(User, flow.user_id) if flow.user_id else None
    if user is None or user.disabled:
        raise Restart(_("Demande expirée"), _("Cette demande de réinitialisation n'est plus "
                                              "valable. Recommencez."))
    hint = policy_hint(user.population, user.mfa_enabled)
    if request.method == "GET":
        return render_template("recovery/password.html", flow=flow,
                               form=NewPasswordForm(formdata=None), hint=hint)
    form = NewPasswordForm()
    form.validate()
    check_new_password(form.password, form.password_confirm, email=user.email,
                       names=[user.given_name, user.family_name], population=user.population,
                       mfa_enabled=user.mfa_enabled)
    if has_errors(form):
        form.password.data = form.password_confirm.data = ""
        return render_template("recovery/password.html", flow=flow, form=form,
                               hint=hint), 400
    now = utcnow()
    user.password_hash = svc.passwords.hash(form.password.data)
    user.password_changed_at = now
    if _code_channel(flow) == "email":
        user.email_verified = True  # the code reached this mailbox
    ended = sso_service.end_all_for_user(db, user.id, "password_reset")
    revoked = revoke_user_grants(db, user.id, "password_reset")
    lockout.clear(svc.kv, user.email)  # the owner proved control: lift any login block
    consumables.revoke_where(db, Consumable.kind == RECOVERY_CODE,
                             Consumable.user_id == user.id)
    audit("password.reset", user_id=user.id, sessions_ended=ended, grants_revoked=revoked)
    flow.state = "done"
    flow.expires_at = now + dt.timedelta(seconds=RECOVERY_FLOW_TTL)
    db.commit()
    when = format_when(now, user.locale)
    notice = {"to": user.email, "locale": user.locale, "when": when,
              "recovery_url": absolute_url("recovery.start")}
    response = redirect(url_for("recovery.progress", flow=flow.id), code=303)
    # The notice goes out while the browser shows the progress page (SMTP may be slow).
    app = current_app._get_current_object()
    response.call_on_close(lambda: _send_reset_notice(app, notice))
    return response


def _send_reset_notice(app, notice: dict) -> None:
    with app.test_request_context(base_url=app.extensions["idp"].settings.issuer):
        send_templated_email(notice["to"], "password_changed", notice["locale"],
                             when=notice["when"], recovery_url=notice["recovery_url"])


@bp.route("/en-cours")
@_guarded
def progress():
    """The seed's "progress" step: the change is applied and the notice is on its way;
    the page moves on to the success page by itself (meta refresh, no script)."""
    flow = _load("done")
    return render_template("recovery/progress.html", flow=flow,
                           next_url=url_for("recovery.done", flow=flow.id))


def _code_channel(flow: Flow) -> str | None:
    """How the accepted code travelled ("email" or "sms")."""
    item = services().db.session.scalar(
        select(Consumable).where(Consumable.kind == RECOVERY_CODE,
                                 Consumable.lookup == _code_lookup(flow),
                                 Consumable.consumed_at.is_not(None))
        .order_by(Consumable.created_at.desc()).limit(1))
    if item is None or not item.destination:
        return None
    return item.destination.split(":", 1)[0]


@bp.route("/termine")
@_guarded
def done():
    flow = _load("done")
    return render_template("recovery/done.html", flow=flow,
                           continue_url=flow.return_to or url_for("login.start"))

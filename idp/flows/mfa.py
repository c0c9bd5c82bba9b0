"""The second factor at login (blueprint ``mfa``), in the login flow's state
``second_factor`` (set by ``idp.flows.login`` after the password):

- ``/login/mfa``: the 6-digit code of the authenticator app (``mfa.challenge``);
- ``/login/mfa/secours``: a recovery code instead (``mfa.recovery``);
- ``/login/mfa/activer``: enrolment, for a user who must have a second factor (population
  policy, or a relying party asking ``acr_values=eidas2``) and has none yet: a code sent
  to the login address first (the password alone enrols nothing), then the app;
- ``/login/mfa/perdu``: neither the app nor a recovery code. With a code sent to the login
  address, the owner asks for the second factor to be removed; it is, at a sign-in
  ``mfa.reset_delay`` later at the earliest, unless a sign-in with the second factor
  cancels the request meanwhile. The owner is told at each step. This is the way back
  when an authenticator was lost, or set up by whoever had the password: a password
  reset alone keeps it.

Wrong codes count per account, whatever the flow (``flows/mfa_setup.check_code``:
growing delay, block, the owner told), and per flow: after ``MAX_FAILURES`` the login
starts again. A code of the wrong shape uses no try.

A completed second factor signs in with ``amr=["pwd", "otp"]`` and ``acr="eidas2"``:
RFC 8176 "otp" for the TOTP code, and also for a recovery code (a single-use password the
user holds, printed or stored; the audit trail records which one was used).

The pages of "Mon compte" about the second factor are in ``idp/account/mfa.py``.
"""

from __future__ import annotations

import datetime as dt
import functools

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select, update

from ..persistence import consumables
from ..persistence.models import Consumable, User, utcnow
from ..security import mfa
from ..services import audit, services
from ..web.auth import sign_in
from ..web.common import add_error, format_when, send_templated_email, send_templated_sms
from ..persistence.flows import Flow, FlowError, delete_flow, load_flow
from . import second_factor
from .mfa_setup import (AddressCheck, ConfirmForm, RecoveryCodeForm, TotpForm, check_code,
                        confirm_enrolment, enrolment_page, population_requires, recovery_url)

bp = Blueprint("mfa", __name__)

MAX_FAILURES = 5  # wrong codes per login flow, then the login starts again
LOGIN_STATE = "second_factor"
AMR = ["pwd", "otp"]
ACR = "eidas2"
RESET_KIND = "mfa_reset"


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the login flow ---------------------------------------------------------------------------
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
        if _matured_reset(user) is not None:
            return _apply_reset(flow, user)
        return view(flow, user)
    return wrapper


def _count_flow_failure(flow: Flow) -> int:
    ttl = max(60, int((flow.expires_at - utcnow()).total_seconds()))
    return services().kv.incr(_failure_key(flow), ttl)


def _sign_in(flow: Flow, user: User, method: str, *, amr: list[str], acr: str, page=None):
    db = services().db.session
    target = flow.return_to or url_for("account.index")
    services().kv.delete(_failure_key(flow))
    delete_flow(db, flow)
    audit("login.success", user_id=user.id, method=method)
    sign_in(user, amr=amr, acr=acr)
    return page(target) if page is not None else redirect(target)


def _complete_login(flow: Flow, user: User, method: str, page=None):
    """Second factor done: a pending request to remove it is cancelled (whoever signs in
    with it has it), then sign in (new session id) and go where the user was going."""
    _cancel_resets(user)
    return _sign_in(flow, user, method, amr=list(AMR), acr=ACR, page=page)


def _challenge_page(flow: Flow, user: User, form, template: str, *, totp: bool):
    """The two login challenges: check the code (counted per account and per flow),
    sign in, or explain; the login restarts after ``MAX_FAILURES`` wrong codes."""
    if request.method == "POST" and form.validate_on_submit():
        verdict = check_code(user, form.code.data, totp=totp, recovery=not totp)
        if verdict.ok:
            if verdict.method == "recovery_code":
                _warn_if_few_codes_left(user)
            return _complete_login(flow, user, verdict.method)
        if verdict.counted and _count_flow_failure(flow) >= MAX_FAILURES:
            audit("login.failure", outcome="failure", user_id=user.id,
                  reason="mfa_too_many_attempts")
            services().db.session.commit()
            return _restart_login(flow, _("Trop de codes incorrects. Pour votre sécurité, "
                                          "reconnectez-vous."))
        add_error(form.code, verdict.message)
    status = 200 if request.method == "GET" else 400
    return render_template(template, form=form, flow=flow,
                           pending_reset=_effective_date(_pending_reset(user), user)), status


def _warn_if_few_codes_left(user: User) -> None:
    left = mfa.recovery_codes_left(services().db.session, user)
    if left <= 3:
        flash(_("Il vous reste %(count)d code(s) de secours. Générez-en de nouveaux depuis "
                "votre espace « Mon compte ».", count=left), "error")


@bp.route("/login/mfa", methods=["GET", "POST"])
@_login_view
def challenge(flow: Flow, user: User):
    if mfa.active_credential(services().db.session, user) is None:
        return redirect(url_for("mfa.login_enrol", flow=flow.id))
    return _challenge_page(flow, user, TotpForm(), "mfa/challenge.html", totp=True)


@bp.route("/login/mfa/secours", methods=["GET", "POST"])
@_login_view
def recovery(flow: Flow, user: User):
    if mfa.active_credential(services().db.session, user) is None:
        return redirect(url_for("mfa.login_enrol", flow=flow.id))
    return _challenge_page(flow, user, RecoveryCodeForm(), "mfa/recovery.html", totp=False)


@bp.route("/login/mfa/activer", methods=["GET", "POST"])
@_login_view
def login_enrol(flow: Flow, user: User):
    """A user who must use a second factor and has none sets it up now, once a code sent
    to the login address is typed."""
    if mfa.active_credential(services().db.session, user) is not None:
        return redirect(url_for("mfa.challenge", flow=flow.id))
    reason = "population" if population_requires(user) else "service"
    action_url = url_for("mfa.login_enrol", flow=flow.id)
    address = AddressCheck(user, "enrol", flow.id, flow.data, "enrol_address")
    if not address.confirmed:
        answer = address.step(action_url, login_flow=flow, reason=reason)
        return answer if answer is not None else redirect(action_url, code=303)
    form = TotpForm()
    if request.method == "POST" and form.validate_on_submit():
        codes = confirm_enrolment(user, form)
        if codes is not None:
            return _complete_login(flow, user, "otp", page=lambda target: render_template(
                "mfa/recovery_codes.html", codes=codes, continue_url=target, enrolled=True))
        if mfa.normalise_totp(form.code.data) is not None \
                and _count_flow_failure(flow) >= MAX_FAILURES:
            return _restart_login(flow, _("Trop de codes incorrects. Pour votre sécurité, "
                                          "reconnectez-vous."))
    status = 200 if request.method == "GET" else 400
    return enrolment_page(user, form, action_url, status, reason=reason, login_flow=flow)


# -- the way back: removing the second factor after a delay ---------------------------------
def _resets(user: User):
    now = utcnow()
    return select(Consumable).where(
        Consumable.kind == RESET_KIND, Consumable.user_id == user.id,
        Consumable.consumed_at.is_(None), Consumable.revoked_at.is_(None),
        Consumable.expires_at > now).order_by(Consumable.created_at.desc())


def _pending_reset(user: User) -> Consumable | None:
    return services().db.session.scalars(_resets(user).limit(1)).first()


def _not_before(item: Consumable) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(item.data.get("not_before", 0)), dt.timezone.utc)


def _matured_reset(user: User) -> Consumable | None:
    item = _pending_reset(user)
    return item if item is not None and _not_before(item) <= utcnow() else None


def _effective_date(item: Consumable | None, user: User) -> str | None:
    return format_when(_not_before(item), user.locale) if item is not None else None


def _tell(user: User, stage: str, **context) -> None:
    """The owner told of the request's stage, at the login address and, when the account
    has a verified phone, by SMS too (the mailbox may be what was taken)."""
    when = format_when(utcnow(), user.locale)
    send_templated_email(user.email, "mfa_reset", user.locale, stage=stage, when=when,
                         recovery_url=recovery_url(), **context)
    if user.phone_number and user.phone_number_verified:
        send_templated_sms(user.phone_number, "mfa_reset", user.locale, stage=stage,
                           when=when, **context)


def _cancel_resets(user: User) -> None:
    db = services().db.session
    cancelled = db.execute(
        update(Consumable).where(Consumable.kind == RESET_KIND, Consumable.user_id == user.id,
                                 Consumable.consumed_at.is_(None),
                                 Consumable.revoked_at.is_(None))
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if cancelled:
        audit("mfa.reset_cancelled", user_id=user.id)
        db.commit()
        _tell(user, "cancelled")


def _apply_reset(flow: Flow, user: User):
    """The delay is over: the second factor goes, and the sign-in goes on with the
    password (or sets one up again, where one is required)."""
    db = services().db.session
    item = _matured_reset(user)
    used = db.execute(update(Consumable).where(Consumable.id == item.id,
                                               Consumable.consumed_at.is_(None),
                                               Consumable.revoked_at.is_(None))
                      .values(consumed_at=utcnow())
                      .execution_options(synchronize_session=False)).rowcount
    if used != 1:  # used by a concurrent sign-in
        return _restart_login(flow)
    mfa.remove_all(db, user)
    audit("mfa.reset", user_id=user.id, requested_at=item.created_at.isoformat())
    db.commit()
    _tell(user, "done")
    flash(_("Comme vous l'avez demandé, la double authentification de votre compte est "
            "désactivée. Configurez-la de nouveau avec votre nouveau téléphone depuis "
            "« Mon compte »."), "success")
    if second_factor.required(services().settings, user, flow.data.get("acr")):
        return redirect(url_for("mfa.login_enrol", flow=flow.id))
    return _sign_in(flow, user, "pwd", amr=["pwd"], acr="eidas1")


@bp.route("/login/mfa/perdu", methods=["GET", "POST"])
@_login_view
def lost(flow: Flow, user: User):
    """Neither the app nor a recovery code: ask for the second factor to be removed."""
    svc = services()
    db = svc.db.session
    pending = _pending_reset(user)
    if pending is not None:
        return render_template("mfa/lost.html", flow=flow,
                               effective=_effective_date(pending, user))
    action_url = url_for("mfa.lost", flow=flow.id)
    address = AddressCheck(user, "reset", flow.id, flow.data, "reset_address")
    if not address.confirmed:
        answer = address.step(action_url, login_flow=flow)
        if answer is not None:
            return answer
    elif request.method != "POST" or not ConfirmForm().validate():
        # Confirmed earlier in this flow: the request is made by a POST only.
        return render_template("mfa/lost.html", flow=flow, effective=None,
                               form=ConfirmForm(formdata=None))
    settings = svc.settings.mfa
    now = utcnow()
    not_before = now + dt.timedelta(seconds=settings.reset_delay)
    consumables.issue_bearer(db, RESET_KIND, settings.reset_delay + settings.reset_window,
                             user_id=user.id, data={"not_before": not_before.timestamp()})
    audit("mfa.reset_requested", user_id=user.id, not_before=not_before.isoformat())
    db.commit()
    _tell(user, "requested", effective=format_when(not_before, user.locale))
    return redirect(action_url, code=303)

"""The login flow: email and password, then back to where the user was going
(an authorization request, or "Mon compte")."""

from __future__ import annotations

import datetime as dt
import logging

from flask import (Blueprint, after_this_request, current_app, g, make_response, redirect,
                   render_template, request, session, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..identity import users
from ..messaging.email import EmailMessage
from ..messaging.templates import purpose_of, render_message
from ..persistence.models import User, utcnow
from ..security import lockout, ratelimit
from ..services import audit, client_ip, services
from ..web.auth import login_required, sign_in
from ..web.forms import BaseForm, email_field, password_field
from . import second_factor
from ..persistence.flows import FlowError, create_flow, delete_flow, load_flow, safe_return_to
from .registration import unconfirmed_login
from ..web.common import captcha_error_markup, format_when

log = logging.getLogger(__name__)

bp = Blueprint("login", __name__)

LOGIN_FLOW_TTL = 30 * 60
BAD_CREDENTIALS = _l("Adresse e-mail ou mot de passe incorrect.")
# The same words whether or not the address has an account.
TOO_MANY_ATTEMPTS = _l("Trop de tentatives de connexion pour cette adresse. Réessayez dans "
                       "%(wait)s.")
ACCOUNT_BLOCKED = _l("Trop de tentatives de connexion pour cette adresse : la connexion est "
                     "suspendue pendant %(wait)s. Pour la rétablir dès maintenant, "
                     "réinitialisez votre mot de passe.")
CAPTCHA_FIRST = _l("Plusieurs tentatives ont échoué : complétez la vérification anti-robot "
                   "puis envoyez de nouveau le formulaire.")
CAPTCHA_FAILED = _l("La vérification anti-robot n'a pas abouti. Répondez à la question "
                    "puis envoyez de nouveau le formulaire.")


class LoginForm(BaseForm):
    email = email_field()
    password = password_field()


class ReauthForm(BaseForm):
    password = password_field()


def _default_target() -> str:
    return url_for("account.index")


def _client_name(client_id: str | None) -> str | None:
    if not client_id:
        return None
    svc = services()
    client = svc.clients.get(svc.db.session, client_id[:64])
    return client.name if client else None


@bp.route("/login", methods=["GET", "POST"])
def start():
    db = services().db.session
    flow_id = request.args.get("flow")
    if flow_id is None:
        return_to = safe_return_to(request.args.get("return_to")) or _default_target()
        if current_user.is_authenticated and not request.args.get("force"):
            return redirect(return_to)
        flow = _new_flow(return_to, client_id=request.args.get("client_id"),
                         acr=request.args.get("acr"), login_hint=request.args.get("login_hint"))
        db.commit()
    else:
        try:
            flow = load_flow(db, flow_id, "login", session.browser_id)
        except FlowError:
            # Expired or foreign flow: start again, keeping nothing from it.
            return redirect(url_for("login.start"))
    if request.method == "GET":
        return _fresh_login_page(flow)
    form = LoginForm()
    if form.validate_on_submit():
        outcome = _attempt(flow, form)
        if not isinstance(outcome, Refusal):
            return outcome
        return _render_login(flow, form, outcome)
    return _render_login(flow, form, Refusal(None, 400 if form.errors else 200))


def _new_flow(return_to: str, *, client_id: str | None, acr: str | None,
              login_hint: str | None):
    return create_flow(services().db.session, "login", state="choose_method",
                       browser=session.browser_id, return_to=return_to, ttl=LOGIN_FLOW_TTL,
                       # Bounded: anyone may start a login (docs/security.md).
                       data={"client_id": (client_id or "")[:64] or None,
                             "acr": (acr or "")[:32] or None,
                             "login_hint": (login_hint or "")[:320]})


def _fresh_login_page(flow):
    """The login form before anything was sent: the email field holds the flow's
    ``login_hint``."""
    return _render_login(flow, _blank_form(flow.data.get("login_hint") or None),
                         Refusal(None, 200))


def _blank_form(hint: str | None) -> LoginForm:
    form = LoginForm(formdata=None)
    form.email.data = hint
    return form


class Refusal:
    """Why the login page is shown again: a message, a status, maybe a captcha error."""

    def __init__(self, error, status: int, retry_after: int = 0,
                 captcha_errors: list | None = None) -> None:
        self.error = error
        self.status = status
        self.retry_after = retry_after
        self.captcha_errors = captcha_errors or []


def _render_login(flow, form, refusal: Refusal):
    with_captcha = _captcha_needed(flow)
    template = "login/login_captcha.html" if with_captcha else "login/login.html"
    response = make_response(render_template(
        template, form=form, flow=flow, error=refusal.error,
        captcha=services().captcha.challenge() if with_captcha else None,
        captcha_errors=refusal.captcha_errors,
        client_name=_client_name(flow.data.get("client_id"))), refusal.status)
    if refusal.retry_after:
        response.headers["Retry-After"] = str(refusal.retry_after)
    return response


# -- protection against password guessing --------------------------------------------
def _ip_failures_key() -> str:
    return "login:ipfail:" + ratelimit.ip_key(client_ip())


def _captcha_needed(flow, email: str | None = None) -> bool:
    """After ``captcha_after_failures`` failures for the address or from the IP (or once
    asked in this flow), the form carries the anti-robot check."""
    svc = services()
    threshold = svc.settings.rate_limits.captcha_after_failures
    if flow.data.get("captcha"):
        return True
    if not email:
        return int(svc.kv.get(_ip_failures_key()) or 0) >= threshold
    # Both counters in one round trip.
    ip_failures, email_failures = svc.kv.get_many(_ip_failures_key(),
                                                  lockout.failures_key(email))
    return int(ip_failures or 0) >= threshold or int(email_failures or 0) >= threshold


def _ask_captcha(flow) -> None:
    if not flow.data.get("captcha"):
        flow.data = {**flow.data, "captcha": True}


def _failure_reason(db, email: str) -> tuple[str, str | None]:
    """For the audit trail only (never shown): why the password was refused. The same
    query runs whether or not the account exists."""
    user = users.find_by_email(db, email)
    if user is None:
        return "unknown_email", None
    return ("disabled" if user.disabled else "bad_password"), user.id


def _attempt(flow, form):
    """Check the password, behind the captcha, the delay and the block. The answer is
    a redirect on success, otherwise a :class:`Refusal`; it never depends on whether
    the address has an account (each address is counted, known or not)."""
    svc = services()
    db = svc.db.session
    kv = svc.kv
    email = users.normalize_email(form.email.data)
    if _captcha_needed(flow, email):
        first_time = not flow.data.get("captcha")
        _ask_captcha(flow)
        if not svc.captcha.verify(request.form):
            audit("login.failure", outcome="failure", reason="captcha")
            db.commit()
            message = CAPTCHA_FIRST if first_time else CAPTCHA_FAILED
            return Refusal(captcha_error_markup(message), 400, captcha_errors=[message])
    decision = lockout.begin(kv, svc.settings, email)
    if not decision.allowed:
        reason = "blocked" if decision.blocked else "delayed"
        audit("login.failure", outcome="failure", reason=reason)
        db.commit()
        wait = ratelimit.format_wait(decision.retry_after)
        message = ACCOUNT_BLOCKED if decision.blocked else TOO_MANY_ATTEMPTS
        return Refusal(message % {"wait": wait}, 429, decision.retry_after)
    try:
        user = users.authenticate_password(db, svc.passwords, email, form.password.data)
    except BaseException:
        lockout.release(kv, email)
        raise
    if user is None:
        return _failed(flow, email)
    lockout.succeeded(kv, email)
    if not user.email_verified:  # nobody signs in before the address is confirmed
        return unconfirmed_login(flow, user)
    if "mfa.challenge" in current_app.view_functions and \
            second_factor.required(svc.settings, user, flow.data.get("acr")):
        flow.state = "second_factor"
        flow.user_id = user.id
        audit("login.password_ok", user_id=user.id)
        db.commit()
        return redirect(url_for("mfa.challenge", flow=flow.id))
    target = flow.return_to or _default_target()
    delete_flow(db, flow)
    audit("login.success", user_id=user.id, method="pwd")
    sign_in(user, amr=["pwd"], acr="eidas1")
    return redirect(target)


def _failed(flow, email: str) -> Refusal:
    svc = services()
    db = svc.db.session
    failure = lockout.failed(svc.kv, svc.settings, email)
    svc.kv.incr(_ip_failures_key(), svc.settings.rate_limits.ip_failure_window)
    reason, user_id = _failure_reason(db, email)
    audit("login.failure", outcome="failure", user_id=user_id, reason=reason,
          failures=failure.failures)
    if failure.blocked:
        audit("account.locked", outcome="failure", user_id=user_id,
              failures=failure.failures, duration=failure.retry_after)
        if failure.notify and user_id is not None:
            _notify_owner(db.get(User, user_id), failure.blocked_until)
    if _captcha_needed(flow, email):
        _ask_captcha(flow)
    db.commit()
    return Refusal(BAD_CREDENTIALS, 400)


def _notify_owner(user: User, blocked_until: float) -> None:
    """Tell the owner their account is blocked (once per block), after the answer has
    left: the time it takes must not tell that the address has an account."""
    svc = services()
    settings = svc.settings
    locale = user.locale or settings.default_locale
    recovery_endpoint = "recovery.start" if "recovery.start" in current_app.view_functions \
        else "login.start"
    when = dt.datetime.fromtimestamp(blocked_until, dt.timezone.utc)
    try:
        subject, text, html = render_message(
            "account_locked", locale, service_name=settings.service_name,
            organisation_name=settings.organisation_name,
            recovery_url=settings.issuer + url_for(recovery_endpoint),
            until=format_when(when, locale, settings.display_timezone))
    except Exception:  # noqa: BLE001 - a broken template must not make a 500
        log.exception("cannot render the account_locked message")
        return
    message = EmailMessage(to=user.contact_email or user.email, subject=subject, text=text,
                           html=html)
    messenger = svc.messenger

    @after_this_request
    def _send_after(response):
        response.call_on_close(lambda: messenger.send_email(message,
                                                            purpose_of("account_locked")))
        return response


@bp.route("/login/reauth", methods=["GET", "POST"])
@login_required
def reauthenticate():
    """Type the password again before a sensitive action."""
    svc = services()
    form = ReauthForm()
    return_to = safe_return_to(request.values.get("return_to")) or _default_target()
    error = None
    retry_after = 0
    if request.method == "POST" and form.validate_on_submit():
        user = g.user
        decision = lockout.begin(svc.kv, svc.settings, user.email)
        if not decision.allowed:
            audit("login.reauth_failure", outcome="failure", user_id=user.id,
                  reason="blocked" if decision.blocked else "delayed")
            svc.db.session.commit()
            retry_after = decision.retry_after
            message = ACCOUNT_BLOCKED if decision.blocked else TOO_MANY_ATTEMPTS
            error = message % {"wait": ratelimit.format_wait(retry_after)}
        else:
            try:
                ok = svc.passwords.verify(user.password_hash, form.password.data)
            except BaseException:
                lockout.release(svc.kv, user.email)
                raise
            if ok:
                lockout.succeeded(svc.kv, user.email)
                current_user.sso.reauthenticated_at = utcnow()
                audit("login.reauthenticated", user_id=user.id)
                svc.db.session.commit()
                session.regenerate()
                return redirect(return_to)
            failure = lockout.failed(svc.kv, svc.settings, user.email)
            audit("login.reauth_failure", outcome="failure", user_id=user.id,
                  reason="bad_password", failures=failure.failures)
            if failure.blocked:
                audit("account.locked", outcome="failure", user_id=user.id,
                      failures=failure.failures, duration=failure.retry_after)
                if failure.notify:
                    _notify_owner(user, failure.blocked_until)
            svc.db.session.commit()
            error = _("Mot de passe incorrect.")
    status = 200 if request.method == "GET" else (429 if retry_after else 400)
    response = make_response(render_template("login/reauth.html", form=form, error=error,
                                             return_to=return_to), status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response

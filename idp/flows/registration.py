"""Account creation, and the confirmation of its address.

Pages: ``/inscription`` (the form, a ``registration`` flow), ``/inscription/envoye`` (the
answer, the same whether the address was new or already had an account: no enumeration),
``/inscription/renvoyer`` (send the message again), ``/inscription/continuer`` (to the
login page, whatever the address) and ``/inscription/confirmer`` (the confirmation).

An account is of no use until its address is confirmed: anyone may type someone else's
address, and an account signed in before confirmation could take the address's recovery
(its creator's phone, his contact address). So a password that is right for an account
whose address is not confirmed signs nobody in: the login answers with
:func:`unconfirmed_login`, a page that sends the link again. Confirming in the browser
that registered continues the registration's flow (signed in, on to its ``return_to``);
elsewhere it leads to the login. The owner of an address registered by someone else
cancels that account from the same page ("Je n'ai pas créé ce compte"): nothing was
ever done with it.

The link carries its code in the fragment (``security/link_codes.py``): the page's
script fills the form, the form posts the code (GET shows the form only, so that mail
scanners following links spend nothing); without JavaScript the code is typed from the
message.

An address that already has an account gets the same answer, while its owner is told by
e-mail (``account_exists``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from wtforms import BooleanField, StringField, TelField
from wtforms.validators import DataRequired, Length

from ..identity import users
from ..messaging.messenger import SEND_FAILED_MESSAGE
from ..messaging.phone import InvalidPhone, parse_phone
from ..persistence import consumables
from ..persistence.models import Consumable, SsoSession, User, utcnow
from ..security import link_codes
from ..services import audit, services
from ..web.auth import sign_in
from ..web.common import (DEFAULT_POPULATION, absolute_url, add_error, captcha_error_markup,
                          captcha_errors, check_new_password, checked_email, has_errors,
                          policy_hint, send_templated_email, ui_locale)
from ..web.prg import post_redirect_get
from ..web.forms import BaseForm, email_field, link_code_field, password_field
from ..persistence.flows import Flow, FlowError, create_flow, delete_flow, load_flow, safe_return_to

log = logging.getLogger(__name__)

bp = Blueprint("registration", __name__, url_prefix="/inscription")
post_redirect_get(bp)  # Back and reload never send a form again

REGISTRATION_FLOW_TTL = 30 * 60
# After the form: how long the answer page (and its "send again" button) stays usable.
DONE_FLOW_TTL = 30 * 60
MAX_RESENDS = 3
EMAIL_CONFIRMATION = "email_confirmation"
# The browser session remembers its registration: confirming there continues it.
SESSION_FLOW = "registration_flow"
# The login flow's state after a right password on an unconfirmed account.
UNCONFIRMED = "unconfirmed"


# -- forms --------------------------------------------------------------------------
class RegistrationForm(BaseForm):
    email = email_field()
    given_name = StringField(_l("Prénom"), validators=[
        DataRequired(message=_l("Saisissez votre prénom.")),
        Length(max=200, message=_l("Le prénom est trop long."))],
        render_kw={"autocomplete": "given-name"})
    family_name = StringField(_l("Nom"), validators=[
        DataRequired(message=_l("Saisissez votre nom.")),
        Length(max=200, message=_l("Le nom est trop long."))],
        render_kw={"autocomplete": "family-name"})
    phone = TelField(_l("Numéro de téléphone"), validators=[
        Length(max=40, message=_l("Ce numéro de téléphone est trop long."))],
        render_kw={"autocomplete": "tel"})
    password = password_field(_l("Mot de passe"), autocomplete="new-password")
    password_confirm = password_field(_l("Confirmation du mot de passe"),
                                      autocomplete="new-password")
    accept_terms = BooleanField(
        _l("J'ai lu et j'accepte les conditions générales d'utilisation"),
        validators=[DataRequired(message=_l(
            "Acceptez les conditions générales d'utilisation pour créer votre compte."))])


class ResendForm(BaseForm):
    pass


class ConfirmForm(BaseForm):
    code = link_code_field()


def _default_target() -> str:
    return url_for("account.index")


def _render_form(flow, form, captcha_failures: list[str], status: int,
                 passwords_cleared: bool = False):
    svc = services()
    phone_required = svc.settings.registration.phone_required
    form.phone.flags.required = phone_required
    extra = captcha_error_markup(captcha_failures[0]) if captcha_failures else None
    return render_template(
        "registration/register.html", form=form, flow=flow, captcha=svc.captcha.challenge(),
        captcha_errors=captcha_failures, captcha_extra=extra,
        password_hint=policy_hint(DEFAULT_POPULATION), phone_required=phone_required,
        terms_url=svc.settings.registration.terms_url,
        terms_version=svc.settings.registration.terms_version,
        passwords_cleared=passwords_cleared), status


def _disabled_page():
    return render_template("errors/error.html", status=404,
                           title=_("Création de compte indisponible"),
                           message=_("La création de compte n'est pas ouverte sur ce service. "
                                     "Adressez-vous à l'organisme qui vous a communiqué cette "
                                     "adresse.")), 404


@bp.route("", methods=["GET", "POST"])
def start():
    svc = services()
    db = svc.db.session
    if not svc.settings.registration.enabled:
        return _disabled_page()
    flow_id = request.args.get("flow")
    if flow_id is None:
        return_to = safe_return_to(request.args.get("return_to")) or _default_target()
        if current_user.is_authenticated:
            return redirect(return_to)
        flow = create_flow(db, "registration", state="form", browser=session.browser_id,
                           return_to=return_to, ttl=REGISTRATION_FLOW_TTL)
        db.commit()
        return _render_form(flow, RegistrationForm(formdata=None), [], 200)
    try:
        flow = load_flow(db, flow_id, "registration", session.browser_id)
    except FlowError:
        return redirect(url_for("registration.start"))
    if flow.state != "form":
        return redirect(url_for("registration.done", flow=flow.id))
    form = RegistrationForm()
    if request.method == "GET":
        return _render_form(flow, RegistrationForm(formdata=None), [], 200)

    form.validate()  # CSRF, presence and length; the rest below, so all errors show at once
    captcha_failures = captcha_errors()
    email = checked_email(form.email)
    phone = None
    raw_phone = (form.phone.data or "").strip()
    if not form.phone.errors and (raw_phone or svc.settings.registration.phone_required):
        try:
            phone = parse_phone(raw_phone, svc.settings.messaging.default_region)
        except InvalidPhone as exc:
            add_error(form.phone, _(str(exc)))
    given_name = (form.given_name.data or "").strip()
    family_name = (form.family_name.data or "").strip()
    if not form.given_name.errors and not given_name:
        add_error(form.given_name, _("Saisissez votre prénom."))
    if not form.family_name.errors and not family_name:
        add_error(form.family_name, _("Saisissez votre nom."))
    check_new_password(form.password, form.password_confirm, email=email,
                       names=[given_name, family_name], population=DEFAULT_POPULATION)
    if has_errors(form) or captcha_failures:
        # Never sent back to the browser: the page says so next to the fields.
        typed = bool(form.password.data or form.password_confirm.data)
        form.password.data = form.password_confirm.data = ""
        return _render_form(flow, form, captcha_failures, 400, passwords_cleared=typed)

    password = form.password.data
    user, existing = _create_account(email, password, given_name, family_name, phone)
    flow.state = "done"
    flow.expires_at = utcnow() + dt.timedelta(seconds=DONE_FLOW_TTL)
    if existing is not None:
        audit("registration.existing_email", outcome="failure", user_id=existing.id)
        flow.data = {"email": email, "existing_user_id": existing.id, "resends": 0}
        db.commit()
        sent = _send_account_exists(existing)
    else:
        audit("registration.success", user_id=user.id, terms_version=user.terms_version)
        flow.user_id = user.id
        flow.data = {"email": email, "resends": 0}
        db.commit()
        sent = send_confirmation(user)
    flow.data = {**flow.data, "sent": sent, "last_sent_at": time.time()}
    db.commit()
    session[SESSION_FLOW] = flow.id
    return redirect(url_for("registration.done", flow=flow.id), code=303)


def _create_account(email: str, password: str, given_name: str, family_name: str,
                    phone: str | None) -> tuple[User | None, User | None]:
    """(new user, None), or (None, the account that already has this address)."""
    svc = services()
    db = svc.db.session
    existing = users.find_by_email(db, email)
    if existing is None:
        try:
            user = users.create_user(db, svc.passwords, email=email, password=password,
                                     given_name=given_name, family_name=family_name,
                                     phone_number=phone, population=DEFAULT_POPULATION,
                                     terms_version=svc.settings.registration.terms_version)
            user.locale = ui_locale() if ui_locale() in svc.settings.locales else "fr"
            db.flush()
            return user, None
        except (IntegrityError, users.UserError):
            # Created meanwhile by a concurrent request: answer as for an existing one.
            db.rollback()
            existing = users.find_by_email(db, email)
            if existing is None:
                raise
            return None, existing
    # Spend a password hash, as creating the account would have.
    svc.passwords.hash(password)
    return None, existing


def send_confirmation(user: User) -> bool:
    svc = services()
    db = svc.db.session
    consumables.revoke_where(db, Consumable.kind == EMAIL_CONFIRMATION,
                             Consumable.user_id == user.id)
    ttl = svc.settings.registration.email_link_ttl
    code = link_codes.new_link_code()
    consumables.issue_bearer(db, EMAIL_CONFIRMATION, ttl,
                             value=link_codes.normalise_link_code(code), user_id=user.id,
                             destination=f"email:{user.email}")
    db.commit()
    return send_templated_email(
        user.email, "email_confirmation", user.locale, code=code, disown=True,
        link=absolute_url("registration.confirm_email") + link_codes.fragment(code),
        expires_hours=max(1, ttl // 3600))


def _send_account_exists(user: User) -> bool:
    return send_templated_email(
        user.email, "account_exists", user.locale,
        login_url=absolute_url("login.start"),
        recovery_url=absolute_url("recovery.start") if "recovery.start" in
        current_app.view_functions else absolute_url("login.start"))


def _load_done_flow():
    db = services().db.session
    try:
        flow = load_flow(db, request.args.get("flow"), "registration", session.browser_id)
    except FlowError:
        return None
    return flow if flow.state == "done" else None


@bp.route("/envoye")
def done():
    flow = _load_done_flow()
    if flow is None:
        return redirect(url_for("registration.start"))
    return _render_done(flow, 200)


def _render_done(flow, status: int, notice: str | None = None):
    data = flow.data or {}
    return render_template(
        "registration/done.html", flow=flow, email=data.get("email", ""),
        send_failed=not data.get("sent", True), send_failed_message=_(SEND_FAILED_MESSAGE),
        can_resend=data.get("resends", 0) < MAX_RESENDS, notice=notice,
        form=ResendForm(formdata=None)), status


def _posted_done_flow():
    """(the answered flow, None), or (None, the response refusing this POST)."""
    flow = _load_done_flow()
    if flow is None:
        return None, redirect(url_for("registration.start"))
    if not ResendForm().validate():
        return None, _render_done(flow, 400)
    return flow, None


@bp.route("/continuer", methods=["POST"])
def proceed():
    """"Continuer": to the login page, for a new address as for one that had an account
    (nobody is signed in before the address is confirmed), the registration's
    ``return_to`` kept."""
    flow, refusal = _posted_done_flow()
    if refusal is not None:
        return refusal
    return redirect(url_for("login.start", return_to=flow.return_to or _default_target()),
                    code=303)


@bp.route("/renvoyer", methods=["POST"])
def resend():
    flow, refusal = _posted_done_flow()
    if refusal is not None:
        return refusal
    svc = services()
    db = svc.db.session
    data = dict(flow.data or {})
    wait = svc.settings.verification.resend_interval - (time.time() - data.get("last_sent_at", 0))
    if data.get("resends", 0) >= MAX_RESENDS:
        return _render_done(flow, 400, _("Vous avez demandé trop d'envois. Réessayez plus tard."))
    if data.get("sent", True) and wait > 0:
        return _render_done(flow, 400, _("Patientez encore %(seconds)d secondes avant de "
                                         "demander un nouvel envoi.", seconds=int(wait) + 1))
    data["resends"] = data.get("resends", 0) + 1
    if data.get("existing_user_id"):
        owner = db.get(User, data["existing_user_id"])
        sent = _send_account_exists(owner) if owner is not None else True
    else:
        user = db.get(User, flow.user_id) if flow.user_id else None
        sent = send_confirmation(user) if user is not None and not user.email_verified \
            else True
    data.update(sent=sent, last_sent_at=time.time())
    flow.data = data
    db.commit()
    return _render_done(flow, 200, _("Le message a été envoyé à nouveau.") if sent else None)


# -- the confirmation link ------------------------------------------------------------
def _link_problem(item: Consumable | None, now) -> tuple[str, str] | None:
    if item is None:
        return (_("Code inconnu"),
                _("Ce code de confirmation n'est pas valide. Vérifiez que vous avez ouvert le "
                  "lien complet reçu par e-mail, ou recopiez le code du message."))
    if item.consumed_at is not None:
        return (_("Lien déjà utilisé"),
                _("Ce lien de confirmation a déjà été utilisé : votre adresse e-mail est "
                  "confirmée, vous n'avez rien d'autre à faire."))
    if item.revoked_at is not None:
        return (_("Lien remplacé"),
                _("Ce lien de confirmation a été remplacé par un plus récent. Utilisez le "
                  "dernier message reçu."))
    if item.expires_at <= now:
        return (_("Lien expiré"),
                _("Ce lien de confirmation a expiré. Connectez-vous à votre compte pour "
                  "recevoir un nouveau lien."))
    return None


def _confirm_page(form, status: int = 200):
    return render_template("registration/confirm.html", form=form), status


def _problem_page(problem: tuple[str, str]):
    return render_template("registration/confirm_problem.html", title=problem[0],
                           message=problem[1]), 400


@bp.route("/confirmer/<token>")
def confirm_email_legacy(token: str):
    """A link sent before codes moved to the fragment (valid ``email_link_ttl``): the
    same form, its code filled in."""
    form = ConfirmForm(formdata=None)
    form.code.data = token[:512]
    return _confirm_page(form)


@bp.route("/confirmer", methods=["GET", "POST"])
def confirm_email():
    """GET: the form (the page's script fills the code in from the link's fragment).
    POST: confirm the address, or (``disown``) cancel an account its owner did not
    create."""
    svc = services()
    db = svc.db.session
    if request.method == "GET":
        return _confirm_page(ConfirmForm(formdata=None))
    form = ConfirmForm()
    if not form.validate():
        return _confirm_page(form, 400)
    value = link_codes.stored_value(form.code.data)
    item = consumables.find_bearer(db, EMAIL_CONFIRMATION, value) if value else None
    problem = _link_problem(item, utcnow())
    if problem is not None:
        return _problem_page(problem)
    user = db.get(User, item.user_id) if item.user_id else None
    if user is None or item.destination != f"email:{user.email}":
        return _problem_page((_("Lien plus valable"),
                              _("Ce lien ne correspond plus à l'adresse de votre compte.")))
    if request.form.get("disown"):
        return _disown(user)
    result = consumables.consume_bearer(db, EMAIL_CONFIRMATION, value)
    if not result.ok:
        db.rollback()
        return _problem_page(_link_problem(result.item, utcnow()) or (
            _("Lien plus valable"), _("Ce lien n'est plus valable.")))
    user.email_verified = True
    audit("email.confirmed", user_id=user.id)
    flow = _registration_of_this_browser(user)
    if flow is not None and not user.disabled and not current_user.is_authenticated:
        # The browser that registered (and typed the password) goes on where it was going.
        target = flow.return_to or _default_target()
        delete_flow(db, flow)
        session.pop(SESSION_FLOW, None)
        sign_in(user, amr=["pwd"], acr="eidas1")
        return redirect(target)
    db.commit()
    return render_template("registration/confirmed.html",
                           signed_in=current_user.is_authenticated)


def _registration_of_this_browser(user: User) -> Flow | None:
    flow_id = session.get(SESSION_FLOW)
    if not isinstance(flow_id, str):
        return None
    try:
        flow = load_flow(services().db.session, flow_id, "registration", session.browser_id)
    except FlowError:
        return None
    return flow if flow.user_id == user.id else None


def _disown(user: User):
    """The owner of the address did not create this account: it goes, and the address is
    free again. Only an account never signed in to: nothing was ever done with it but
    its creation (one created before sign-in waited for confirmation may have been used:
    its owner takes it back through "mot de passe perdu")."""
    db = services().db.session
    used = db.scalar(select(SsoSession.id).where(SsoSession.user_id == user.id).limit(1))
    if user.email_verified or used is not None:
        return _problem_page((_("Compte déjà utilisé"),
                              _("Ce compte a déjà été confirmé ou utilisé : il ne peut plus "
                                "être annulé ainsi. Si vous n'en êtes pas à l'origine, "
                                "utilisez « Mot de passe perdu » pour en reprendre le "
                                "contrôle.")))
    audit("registration.disowned", user_id=user.id)
    db.execute(delete(Consumable).where(Consumable.user_id == user.id))
    db.delete(user)
    db.commit()
    return render_template("registration/disowned.html"), 200


# -- a right password, an unconfirmed address -------------------------------------------
def unconfirmed_login(flow: Flow, user: User):
    """The login's answer to a right password for an account whose address is not
    confirmed yet: nobody is signed in; the page offers to send the link again."""
    db = services().db.session
    flow.state = UNCONFIRMED
    flow.user_id = user.id
    last_sent = db.scalar(select(Consumable.created_at).where(
        Consumable.kind == EMAIL_CONFIRMATION, Consumable.user_id == user.id)
        .order_by(Consumable.created_at.desc()).limit(1))
    flow.data = {**(flow.data or {}), "resends": 0,
                 "last_sent_at": last_sent.timestamp() if last_sent else 0}
    audit("login.failure", outcome="failure", user_id=user.id, reason="email_unconfirmed")
    db.commit()
    return _render_unconfirmed(flow, user, None, 403)


def _render_unconfirmed(flow: Flow, user: User, notice: str | None, status: int):
    return render_template("registration/unconfirmed.html", flow=flow, email=user.email,
                           notice=notice, form=ResendForm(formdata=None),
                           can_resend=(flow.data or {}).get("resends", 0) < MAX_RESENDS), status


@bp.route("/confirmer/renvoyer", methods=["POST"])
def resend_for_login():
    """From :func:`unconfirmed_login`'s page: the confirmation link again."""
    svc = services()
    db = svc.db.session
    try:
        flow = load_flow(db, request.args.get("flow"), "login", session.browser_id)
    except FlowError:
        return redirect(url_for("login.start"))
    user = db.get(User, flow.user_id) if flow.state == UNCONFIRMED and flow.user_id else None
    if user is None:
        return redirect(url_for("login.start"))
    if user.email_verified:
        return redirect(url_for("login.start", return_to=flow.return_to))
    if not ResendForm().validate():
        return _render_unconfirmed(flow, user, None, 400)
    data = dict(flow.data or {})
    wait = svc.settings.verification.resend_interval - (time.time() - data.get("last_sent_at", 0))
    if data.get("resends", 0) >= MAX_RESENDS:
        return _render_unconfirmed(flow, user, _("Vous avez demandé trop d'envois. Réessayez "
                                                 "plus tard."), 400)
    if wait > 0:
        return _render_unconfirmed(flow, user, _("Patientez encore %(seconds)d secondes avant "
                                                 "de demander un nouvel envoi.",
                                                 seconds=int(wait) + 1), 400)
    refusal = svc.messenger.check_email(user.email)
    sent = refusal is None and send_confirmation(user)
    data.update(resends=data.get("resends", 0) + 1, last_sent_at=time.time())
    flow.data = data
    db.commit()
    if not sent:
        return _render_unconfirmed(flow, user, refusal or _(SEND_FAILED_MESSAGE), 400)
    return _render_unconfirmed(flow, user, _("Le message a été envoyé à nouveau."), 200)

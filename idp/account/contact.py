"""Add or change a contact (phone number, contact e-mail), verified by a code.

Step 1: type the new contact, pass the anti-robot check, "Envoyer le code de
validation". A numeric code (``verification.code_length`` digits, from ``secrets``) goes
by SMS to the phone, by e-mail to the address; it is stored hashed, bound to the
user, the purpose and the destination, expires after ``verification.code_ttl`` and
dies after ``verification.max_attempts`` wrong tries. A new code for the same destination
carries the failures of the one it replaces, so once they are used up no new code is sent
(no message spent) until that code would have expired: the page says how long to wait.
One code per destination per ``verification.resend_interval``; the messages themselves
are capped per destination and per account (``security.message_guard``).
Step 2: type the code (one of the wrong length uses no try). Only then does the contact
change, marked verified.

Only an account whose login address is verified may add a contact: otherwise whoever
created an account with someone else's address could make it his.
"""

from __future__ import annotations

import functools
import hashlib
import math
import secrets

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ..web.common import captcha_error_markup
from ..identity.users import is_valid_email, normalize_email
from ..messaging.base import Purpose
from ..messaging.messenger import SEND_FAILED_MESSAGE
from ..messaging.phone import InvalidPhone, is_mobile, parse_phone
from ..persistence import consumables
from ..persistence.consumables import Outcome
from ..persistence.models import Consumable, User, utcnow
from ..security.message_guard import region_refusal
from ..security.ratelimit import format_wait
from ..services import audit, services
from ..web.auth import login_required, recent_auth_required
from . import bp
from .common import page, send_email, send_sms, ui_locale
from .forms import ButtonForm, CodeForm, ContactEmailForm, PhoneForm
from .profile import display_phone

CODE_KIND = "contact_code"
PENDING_KEY = "account_contact"
# URL slug -> kind of contact
SLUGS = {"telephone": "phone", "courriel": "email"}


def _kind(slug: str) -> str:
    kind = SLUGS.get(slug)
    if kind is None:
        abort(404)
    return kind


def lookup_for(user_id: str, kind: str, value: str) -> str:
    return f"contact:{user_id}:{kind}:{value}"


def new_code(length: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


def _pending(kind: str) -> str | None:
    value = (session.get(PENDING_KEY) or {}).get(kind)
    return value if isinstance(value, str) else None


def _set_pending(kind: str, value: str | None) -> None:
    pending = dict(session.get(PENDING_KEY) or {})
    if value is None:
        pending.pop(kind, None)
    else:
        pending[kind] = value
    session[PENDING_KEY] = pending


def shown(kind: str, value: str) -> str:
    return display_phone(value) if kind == "phone" else value


# -- throttling -------------------------------------------------------------------
def _slot_key(kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()
    return f"account:code-sent:dest:{digest}"


def take_send_slot(kind: str, value: str) -> int:
    """0 when a code may be sent to this destination now (the slot is taken), else the
    seconds to wait. Per destination only: another number may get its code at once."""
    svc = services()
    interval = svc.settings.verification.resend_interval
    if interval <= 0:
        return 0
    key = _slot_key(kind, value)
    if not svc.kv.set_if_absent(key, "1", interval):
        return max(1, svc.kv.ttl(key))
    return 0


def release_send_slot(kind: str, value: str) -> None:
    services().kv.delete(_slot_key(kind, value))


def wait_message(kind: str, value: str, seconds: int) -> str:
    if kind == "phone":
        return _("Un code vient d'être envoyé au %(destination)s. Patientez %(seconds)s "
                 "secondes avant d'en demander un nouveau.",
                 destination=shown(kind, value), seconds=seconds)
    return _("Un code vient d'être envoyé à %(destination)s. Patientez %(seconds)s "
             "secondes avant d'en demander un nouveau.",
             destination=shown(kind, value), seconds=seconds)


def exhausted_wait(user_id: str, kind: str, value: str) -> int:
    """Seconds before a new code for this destination would get tries again (0: now).
    A new code carries the failures of the live one it replaces (consumables.issue_code),
    until that one would have expired."""
    svc = services()
    now = utcnow()
    latest = svc.db.session.execute(select(Consumable.attempts, Consumable.expires_at).where(
        Consumable.kind == CODE_KIND, Consumable.lookup == lookup_for(user_id, kind, value),
        Consumable.consumed_at.is_(None), Consumable.expires_at > now)
        .order_by(Consumable.created_at.desc()).limit(1)).first()
    if latest is None or latest.attempts < svc.settings.verification.max_attempts:
        return 0
    return max(1, math.ceil((latest.expires_at - now).total_seconds()))


def too_many_failures_message(seconds: int) -> str:
    return _("Trop d'essais incorrects : ce code n'est plus valable. Vous pourrez demander "
             "un nouveau code dans %(wait)s.", wait=format_wait(seconds))


def send_code(user: User, kind: str, value: str) -> str | None:
    """Issue and send a new code; None when sent, else a French error for the page."""
    svc = services()
    exhausted = exhausted_wait(user.id, kind, value)
    if exhausted:
        return too_many_failures_message(exhausted)
    wait = take_send_slot(kind, value)
    if wait:
        return wait_message(kind, value, wait)
    refusal = svc.messenger.check_sms(value, Purpose.CODE) if kind == "phone" \
        else svc.messenger.check_email(value, Purpose.CODE)
    if refusal:
        release_send_slot(kind, value)
        return refusal
    settings = svc.settings.verification
    code = new_code(settings.code_length)
    item = consumables.issue_code(
        svc.db.session, CODE_KIND, lookup_for(user.id, kind, value), code, settings.code_ttl,
        svc.secret_key, user_id=user.id, destination=f"{kind}:{value}")
    audit("contact.code_sent", user_id=user.id, kind=kind)
    svc.db.session.commit()
    minutes = max(1, settings.code_ttl // 60)
    locale = ui_locale()
    if kind == "phone":
        sent = send_sms(value, "verification_code", locale, code=code, expires_minutes=minutes)
    else:
        sent = send_email(value, "verification_code", locale, code=code,
                          expires_minutes=minutes)
    if not sent:
        consumables.revoke_where(svc.db.session, Consumable.id == item.id)
        audit("contact.code_send_failed", outcome="failure", user_id=user.id, kind=kind)
        svc.db.session.commit()
        release_send_slot(kind, value)
        return _(SEND_FAILED_MESSAGE)
    return None


def verified_login_required(view):
    """Contacts change only on an account whose login address is verified."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not g.user.email_verified:
            return render_template(
                "errors/error.html", status=403, title=_("Adresse e-mail à confirmer"),
                message=_("Confirmez d'abord votre adresse e-mail de connexion en suivant le "
                          "lien qui vous a été envoyé : vous pourrez ensuite ajouter un "
                          "numéro de téléphone ou une adresse de contact.")), 403
        return view(*args, **kwargs)
    return wrapper


# -- step 1: the new contact ---------------------------------------------------------
def _read_phone(form: PhoneForm, user: User) -> str | None:
    svc = services()
    try:
        e164 = parse_phone(form.phone.data, svc.settings.messaging.default_region)
    except InvalidPhone as exc:
        form.phone.errors.append(_(str(exc)))
        return None
    if e164 == user.phone_number and user.phone_number_verified:
        form.phone.errors.append(_("C'est déjà votre numéro de téléphone vérifié."))
        return None
    try:
        mobile = is_mobile(e164)
    except Exception:  # noqa: BLE001
        mobile = False
    if not mobile:
        form.phone.errors.append(_("Ce numéro ne peut pas recevoir de SMS : saisissez un "
                                   "numéro de téléphone mobile."))
        return None
    # The country only: the caps count when the code is sent (send_code).
    reason = region_refusal(e164, svc.settings.messaging.sms_allowed_regions)
    if reason:
        form.phone.errors.append(reason)
        return None
    return e164


def _read_email(form: ContactEmailForm, user: User) -> str | None:
    address = normalize_email(form.email.data)
    if not is_valid_email(address):
        form.email.errors.append(_("Saisissez une adresse e-mail valide, par exemple "
                                   "nom@exemple.fr."))
        return None
    if address == user.contact_email:
        form.email.errors.append(_("C'est déjà votre adresse e-mail de contact."))
        return None
    return address


@bp.route("/contact/<slug>", methods=["GET", "POST"])
@recent_auth_required  # changing the phone or an address: password typed lately
@verified_login_required
def contact(slug: str):
    kind = _kind(slug)
    user = g.user
    svc = services()
    form = PhoneForm() if kind == "phone" else ContactEmailForm()
    error = captcha_error = None
    if request.method == "POST":
        valid = form.validate_on_submit()
        if not svc.captcha.verify(request.form):
            captcha_error = _("Répondez à la question pour prouver que vous n'êtes pas "
                              "un robot.")
        if valid:
            value = _read_phone(form, user) if kind == "phone" else _read_email(form, user)
            if value is not None and captcha_error is None:
                error = send_code(user, kind, value)
                if error is None:
                    _set_pending(kind, value)
                    return redirect(url_for("account.contact_code", slug=slug))
                (form.phone if kind == "phone" else form.email).errors.append(error)
    status = 400 if request.method == "POST" else 200
    summary = captcha_error_markup(captcha_error) if captcha_error else None
    current = user.phone_number if kind == "phone" else user.contact_email
    return page("account/contact.html", status, section="account.index", form=form,
                kind=kind, slug=slug, error=summary, captcha_error=captcha_error,
                challenge=svc.captcha.challenge(), current=shown(kind, current) if current else "")


# -- step 2: the code ------------------------------------------------------------------
def _outcome_message(outcome: Outcome, attempts_left: int, item: Consumable | None) -> str:
    if outcome is Outcome.WRONG_CODE:
        return _("Ce code est incorrect. Il vous reste %(count)s essai(s).",
                 count=attempts_left)
    if outcome is Outcome.TOO_MANY_ATTEMPTS:
        left = (item.expires_at - utcnow()).total_seconds() if item is not None else 0
        return too_many_failures_message(max(1, math.ceil(left)))
    if outcome is Outcome.EXPIRED:
        return _("Ce code a expiré. Demandez un nouveau code.")
    return _("Ce code n'est plus valable. Demandez un nouveau code.")


def _apply(user: User, kind: str, value: str) -> None:
    if kind == "phone":
        user.phone_number = value
        user.phone_number_verified = True
    else:
        user.contact_email = value
        if value == user.email:
            user.email_verified = True


@bp.route("/contact/<slug>/code", methods=["GET", "POST"])
@login_required
@verified_login_required
def contact_code(slug: str):
    kind = _kind(slug)
    user = g.user
    svc = services()
    value = _pending(kind)
    if value is None:
        return redirect(url_for("account.contact", slug=slug))
    settings = svc.settings.verification
    form = CodeForm()
    if request.method == "POST" and form.validate_on_submit():
        code = "".join((form.code.data or "").split())
        if not (code.isascii() and code.isdigit() and len(code) == settings.code_length):
            form.code.errors.append(_("Le code compte %(length)s chiffres.",
                                      length=settings.code_length))
        else:
            result = consumables.verify_code(
                svc.db.session, CODE_KIND, lookup_for(user.id, kind, value), code,
                svc.secret_key, settings.max_attempts)
            if result.ok:
                _apply(user, kind, value)
                audit("contact.verified", user_id=user.id, kind=kind)
                svc.db.session.commit()
                _set_pending(kind, None)
                flash(_("Votre numéro de téléphone a été vérifié et enregistré.")
                      if kind == "phone" else
                      _("Votre adresse e-mail de contact a été vérifiée et enregistrée."),
                      "success")
                return redirect(url_for("account.index"))
            audit("contact.code_rejected", outcome="failure", user_id=user.id, kind=kind,
                  reason=result.outcome.value)
            svc.db.session.commit()
            form.code.errors.append(_outcome_message(result.outcome, result.attempts_left,
                                                     result.item))
    status = 400 if request.method == "POST" else 200
    return page("account/contact_code.html", status, section="account.index", form=form,
                kind=kind, slug=slug, destination=shown(kind, value),
                code_length=settings.code_length, resend_form=ButtonForm())


@bp.route("/contact/<slug>/renvoyer", methods=["POST"])
@login_required
@verified_login_required
def contact_resend(slug: str):
    kind = _kind(slug)
    value = _pending(kind)
    if value is None:
        return redirect(url_for("account.contact", slug=slug))
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    error = send_code(g.user, kind, value)
    if error:
        flash(error, "error")
    else:
        flash(_("Un nouveau code vous a été envoyé."), "success")
    return redirect(url_for("account.contact_code", slug=slug))


@bp.route("/contact/<slug>/supprimer", methods=["POST"])
@recent_auth_required
def contact_remove(slug: str):
    kind = _kind(slug)
    user = g.user
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    if kind == "phone" and user.phone_number:
        user.phone_number = None
        user.phone_number_verified = False
        if user.preferred_contact == "sms":
            user.preferred_contact = "email"
    elif kind == "email" and user.contact_email:
        user.contact_email = None
    else:
        return redirect(url_for("account.index"))
    audit("contact.removed", user_id=user.id, kind=kind)
    services().db.session.commit()
    flash(_("Votre numéro de téléphone a été supprimé.") if kind == "phone"
          else _("Votre adresse e-mail de contact a été supprimée."), "success")
    return redirect(url_for("account.index"))

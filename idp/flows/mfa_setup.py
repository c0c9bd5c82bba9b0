"""What the login's second-factor step (``flows/mfa.py``) and the "Mon compte" pages
(``account/mfa.py``) share: the forms, checking a code of the enrolled second factor
(counted per account, ``security/mfa_lockout.py``), setting up an authenticator, the
code sent to the login address, and the notices.

Who may set up an authenticator: a first one needs a code sent to the login address
(the password alone must not let its finder bind the account to his own phone: the
owner would then be locked out by it); replacing one needs a code of the current one,
or a recovery code. An owner with neither asks for the second factor to be removed
through the login address, which happens only after ``mfa.reset_delay`` (flows/mfa.py).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import MutableMapping
from dataclasses import dataclass

from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from ..messaging.base import mask_email
from ..persistence import consumables
from ..persistence.consumables import Outcome
from ..persistence.models import User, utcnow
from ..security import mfa, mfa_lockout
from ..security.ratelimit import format_wait
from ..services import audit, services
from ..web.common import absolute_url, add_error, format_when, send_templated_email
from ..web.forms import BaseForm

ADDRESS_CODE = "mfa_address_code"
# Codes to the login address per step (the first and two new ones).
MAX_ADDRESS_SENDS = 3


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


class AddressCodeForm(BaseForm):
    code = _code_field(_l("Code reçu par e-mail"), _l("Saisissez le code reçu par e-mail."),
                       32, inputmode="numeric", size="8")


class ConfirmForm(BaseForm):
    pass


# -- helpers --------------------------------------------------------------------------------
def population_requires(user: User) -> bool:
    population = services().settings.population(user.population)
    return bool(population is not None and population.mfa_required)


def recovery_url() -> str:
    endpoint = "recovery.start" if "recovery.start" in current_app.view_functions \
        else "login.start"
    return absolute_url(endpoint)


def notify(user: User, action: str) -> None:
    """The owner is told of a change of the second factor (``mfa_changed``)."""
    send_templated_email(user.email, "mfa_changed", user.locale,
                         action=action, when=format_when(utcnow(), user.locale),
                         recovery_url=recovery_url())


# -- a code of the enrolled second factor ---------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """How a code of the enrolled second factor was judged. ``method``: "otp" or
    "recovery_code" when right; else ``message`` (French, for the field)."""

    ok: bool
    method: str | None = None
    message: str | None = None
    counted: bool = True


def check_code(user: User, raw: str, *, totp: bool = True, recovery: bool = True,
               context: str = "login") -> Verdict:
    """Check ``raw`` against the user's authenticator (``totp``) or recovery codes
    (``recovery``). A code of neither shape uses no try; any other attempt counts
    against the account (security/mfa_lockout.py), whatever the flow, and a block tells
    the owner. A recovery code that is right is used up."""
    svc = services()
    db = svc.db.session
    code_totp = mfa.normalise_totp(raw) if totp else None
    code_recovery = mfa.normalise_recovery_code(raw) if recovery and code_totp is None \
        else None
    if code_totp is None and code_recovery is None:
        if totp and not recovery:
            message = _("Le code compte 6 chiffres, par exemple 123456.")
        elif recovery and not totp:
            message = _("Un code de secours compte 12 caractères, par exemple K7QM-3XPA-9RTD.")
        else:
            message = _("Saisissez les 6 chiffres de votre application, ou un code de secours "
                        "de 12 caractères.")
        return Verdict(False, message=message, counted=False)
    decision = mfa_lockout.begin(svc.kv, svc.settings, user.id)
    if not decision.allowed:
        audit("mfa.challenge_failed", outcome="failure", user_id=user.id, context=context,
              reason="blocked" if decision.blocked else "delayed")
        db.commit()
        return Verdict(False, message=refusal_message(decision.retry_after, decision.blocked),
                       counted=False)
    try:
        if code_totp is not None:
            credential = mfa.active_credential(db, user)
            result = mfa.check_totp(db, credential, code_totp, svc.secret_key) \
                if credential is not None else mfa.TotpResult.WRONG
            method, reason = "otp", result
            ok = result == mfa.TotpResult.OK
        else:
            method, reason = "recovery_code", "wrong"
            ok = mfa.use_recovery_code(db, user, code_recovery, svc.secret_key)
    except BaseException:
        mfa_lockout.release(svc.kv, svc.settings, user.id)
        raise
    if ok:
        mfa_lockout.succeeded(svc.kv, svc.settings, user.id)
        if method == "recovery_code":
            audit("mfa.recovery_code_used", user_id=user.id, context=context,
                  codes_left=mfa.recovery_codes_left(db, user))
        return Verdict(True, method=method)
    failure = mfa_lockout.failed(svc.kv, svc.settings, user.id)
    audit("mfa.challenge_failed", outcome="failure", user_id=user.id, context=context,
          method=method, reason=reason, failures=failure.failures)
    if failure.blocked:
        audit("mfa.locked", outcome="failure", user_id=user.id, failures=failure.failures,
              duration=failure.retry_after)
    db.commit()
    if failure.blocked and failure.notify:
        until = utcnow() + dt.timedelta(seconds=failure.retry_after)
        send_templated_email(user.email, "mfa_locked", user.locale,
                             until=format_when(until, user.locale), recovery_url=recovery_url())
    if failure.retry_after:
        return Verdict(False, method=method,
                       message=refusal_message(failure.retry_after, failure.blocked))
    if reason == mfa.TotpResult.REPLAYED:
        return Verdict(False, method=method, message=_(
            "Ce code a déjà été utilisé. Attendez que votre application affiche le code "
            "suivant."))
    if method == "recovery_code":
        return Verdict(False, method=method,
                       message=_("Ce code de secours est incorrect ou a déjà été utilisé."))
    return Verdict(False, method=method, message=_(
        "Ce code est incorrect. Saisissez le code affiché actuellement par votre "
        "application."))


def refusal_message(retry_after: int, blocked: bool) -> str:
    if blocked:
        return _("Trop de codes incorrects pour ce compte : la double authentification est "
                 "bloquée pendant %(wait)s. Si vous n'êtes pas à l'origine de ces essais, "
                 "changez votre mot de passe.", wait=format_wait(retry_after))
    return _("Trop de codes incorrects pour ce compte. Réessayez dans %(wait)s.",
             wait=format_wait(retry_after))


# -- setting up an authenticator ------------------------------------------------------------
def enrolment_page(user: User, form, action_url: str, status: int = 200, **context):
    svc = services()
    credential = mfa.pending_credential(svc.db.session, user, svc.secret_key)
    svc.db.session.commit()
    secret = mfa.unseal(svc.secret_key, user.id, credential.secret)
    issuer = svc.settings.service_name
    uri = mfa.provisioning_uri(secret, user.email, issuer)
    return render_template("mfa/enrol.html", form=form, action_url=action_url,
                           qr_code=mfa.qr_data_uri(uri), manual_key=mfa.group_key(secret),
                           account=user.email, issuer=issuer, step=mfa.STEP,
                           digits=mfa.DIGITS, **context), status


def confirm_enrolment(user: User, form) -> list[str] | None:
    """Check the first code against the pending secret (one of the wrong shape is
    refused as such); on success the credential is confirmed, recovery codes are made
    (returned, to show once) and the owner told."""
    if mfa.normalise_totp(form.code.data) is None:
        add_error(form.code, _("Le code compte 6 chiffres, par exemple 123456."))
        return None
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
    notify(user, "changed" if was_enabled else "enabled")
    return codes


# -- a code sent to the login address -------------------------------------------------------
class AddressCheck:
    """A code sent to the login address, proving that whoever acts (with the password)
    also reads its mailbox: before a first authenticator, and before asking for the
    second factor to be removed. ``state`` is where the step is remembered (a login
    flow's data, or the browser session's), under ``key``; ``scope`` binds the code to
    it (the flow's id, or "account")."""

    def __init__(self, user: User, purpose: str, scope: str, state: MutableMapping,
                 key: str) -> None:
        self.user = user
        self.purpose = purpose
        self.lookup = f"mfa-address:{user.id}:{purpose}:{scope}"
        self.state = state
        self.key = key

    def _record(self) -> dict:
        record = self.state.get(self.key)
        if not isinstance(record, dict) or record.get("user") != self.user.id:
            return {"user": self.user.id}
        return dict(record)

    def _save(self, record: dict) -> None:
        self.state[self.key] = record

    @property
    def confirmed(self) -> bool:
        until = self._record().get("confirmed_until", 0)
        return isinstance(until, (int, float)) and until > time.time()

    @property
    def sent(self) -> bool:
        return bool(self._record().get("sends"))

    @property
    def can_resend(self) -> bool:
        return self._record().get("sends", 0) < MAX_ADDRESS_SENDS

    def masked_address(self) -> str:
        return mask_email(self.user.email)

    def send(self) -> str | None:
        """Send a new code; None when sent, else a French reason."""
        svc = services()
        record = self._record()
        if record.get("sends", 0) >= MAX_ADDRESS_SENDS:
            return _("Vous avez demandé trop de codes. Recommencez plus tard.")
        wait = svc.settings.verification.resend_interval - (time.time()
                                                            - record.get("last_sent_at", 0))
        if wait > 0:
            return _("Patientez encore %(seconds)d secondes avant de demander un nouveau "
                     "code.", seconds=int(wait) + 1)
        refusal = svc.messenger.check_email(self.user.email)
        if refusal:
            return refusal
        verification = svc.settings.verification
        code = "".join(secrets.choice("0123456789") for _ in range(verification.code_length))
        consumables.issue_code(svc.db.session, ADDRESS_CODE, self.lookup, code,
                               verification.code_ttl, svc.secret_key, user_id=self.user.id,
                               destination=f"email:{self.user.email}")
        audit("mfa.address_code_sent", user_id=self.user.id, purpose=self.purpose)
        record.update(sends=record.get("sends", 0) + 1, last_sent_at=time.time())
        self._save(record)
        svc.db.session.commit()
        if not send_templated_email(self.user.email, "verification_code", self.user.locale,
                                    code=code,
                                    expires_minutes=max(1, verification.code_ttl // 60)):
            return _("Le message n'a pas pu être envoyé, réessayez dans quelques instants.")
        return None

    def verify(self, raw: str) -> str | None:
        """Check the typed code; None when right (the step is then confirmed for
        ``mfa.PENDING_TTL``), else a French message. A code of the wrong shape uses no
        try."""
        svc = services()
        verification = svc.settings.verification
        code = "".join((raw or "").split())
        if not (code.isascii() and code.isdigit() and len(code) == verification.code_length):
            return _("Le code compte %(length)s chiffres.", length=verification.code_length)
        result = consumables.verify_code(svc.db.session, ADDRESS_CODE, self.lookup, code,
                                         svc.secret_key, verification.max_attempts)
        if result.ok:
            record = self._record()
            record["confirmed_until"] = time.time() + mfa.PENDING_TTL
            self._save(record)
            audit("mfa.address_confirmed", user_id=self.user.id, purpose=self.purpose)
            svc.db.session.commit()
            return None
        audit("mfa.address_code_rejected", outcome="failure", user_id=self.user.id,
              purpose=self.purpose, reason=result.outcome.value)
        svc.db.session.commit()
        if result.outcome is Outcome.WRONG_CODE:
            return _("Ce code est incorrect. Il vous reste %(count)s essai(s).",
                     count=result.attempts_left)
        if result.outcome is Outcome.EXPIRED:
            return _("Ce code a expiré. Demandez un nouveau code.")
        return _("Ce code n'est plus valable. Demandez un nouveau code.")

    def page(self, form, action_url: str, status: int = 200, notice: str | None = None,
             error: str | None = None, **context):
        return render_template("mfa/address.html", form=form, action_url=action_url,
                               address=self.masked_address(), sent=self.sent,
                               can_resend=self.can_resend, notice=notice, error=error,
                               send_form=ConfirmForm(formdata=None), purpose=self.purpose,
                               **context), status

    def step(self, action_url: str, **context):
        """The request's answer while the address is not confirmed: the page, a code sent
        (``send`` button) or checked. None once the typed code is right: the caller goes
        on (a redirect, so that a reload posts nothing)."""
        if request.method != "POST":
            return self.page(AddressCodeForm(formdata=None), action_url, **context)
        if request.form.get("send"):
            if not ConfirmForm().validate():
                return self.page(AddressCodeForm(formdata=None), action_url, 400, **context)
            error = self.send()
            if error:
                return self.page(AddressCodeForm(formdata=None), action_url, 400,
                                 error=error, **context)
            return self.page(AddressCodeForm(formdata=None), action_url, notice=_(
                "Un code vient d'être envoyé à %(address)s.",
                address=self.masked_address()), **context)
        form = AddressCodeForm()
        if form.validate():
            error = self.verify(form.code.data)
            if error is None:
                return None
            add_error(form.code, error)
        return self.page(form, action_url, 400, **context)

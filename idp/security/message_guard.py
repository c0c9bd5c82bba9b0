"""What may be sent: every e-mail and SMS passes a guard first (``Messenger(sms_guard=...,
email_guard=...)``). SMS cost money, and both can be used to harass someone: whoever
types an address or a number into a form makes a message go there.

Each message has a purpose (:class:`idp.messaging.base.Purpose`): a code or link someone
asked for (``CODE``, maybe not the owner of the destination), a code to get back into an
account (``SIGN_IN``) or a security notice to the owner (``NOTICE``). Codes and links are
capped; notices never are (an attacker filling a mailbox must not silence the notice of
what he does next), and each follows the owner's own action or is sent once per event.

An SMS is refused, with a French reason, when:

- its country is not in ``messaging.sms_allowed_regions`` (toll fraud goes through
  premium numbers abroad);
- (codes) too many SMS went to it lately (``messaging.sms_per_destination``, e.g.
  ``"3/hour, 6/day"``), or too many were asked for by one account
  (``messaging.sms_per_account``); the account is the one signed in, or the one a flow
  names with :func:`for_account`;
- the service's daily budget is spent (``messaging.sms_daily_budget``, a UTC day). The
  last ``messaging.sms_budget_reserve_percent`` of it is kept for ``SIGN_IN`` and
  ``NOTICE``: spending the budget through many accounts adding phone numbers does not
  stop password recovery by SMS for everyone.

An e-mail with a code or link is refused when too many went to the address lately
(``messaging.email_per_destination``) or were asked for by one account
(``messaging.email_per_account``). A flow that must not tell whether an address has an
account asks the guard for an address without one too (``messenger.check_email``): the
address is counted and answered the same.

Counters live in the key-value store (shared between processes) and are incremented
before being compared, so concurrent sends cannot overshoot. Within one request, the
guard's answer for a destination is given again without counting again (a view may ask
``messenger.check_sms`` before ``send_sms``).
"""

from __future__ import annotations

import hashlib
import logging
import time

from flask import g, has_request_context

from ..i18n import N_
from ..messaging.base import Purpose
from ..messaging.phone import region_of
from .ratelimit import count, format_wait, parse_limits

log = logging.getLogger(__name__)

# Patched by tests to move time forward.
clock = time.time

REFUSED_REGION = N_("Les SMS ne peuvent être envoyés qu'à des numéros de : %(regions)s. "
                    "Choisissez de recevoir le message par e-mail.")
REFUSED_DESTINATION = N_("Trop de SMS ont été envoyés à ce numéro récemment. Réessayez dans "
                         "%(wait)s ou choisissez de recevoir le message par e-mail.")
REFUSED_ACCOUNT = N_("Trop de SMS ont été demandés pour ce compte récemment. Réessayez dans "
                     "%(wait)s ou choisissez de recevoir le message par e-mail.")
REFUSED_BUDGET = N_("L'envoi de SMS est momentanément indisponible. Réessayez demain ou "
                    "choisissez de recevoir le message par e-mail.")
REFUSED_INVALID = N_("Ce numéro de téléphone n'est pas valide.")
REFUSED_EMAIL_DESTINATION = N_("Trop de messages ont été envoyés à cette adresse e-mail "
                               "récemment. Réessayez dans %(wait)s.")
REFUSED_EMAIL_ACCOUNT = N_("Trop de messages ont été demandés pour ce compte récemment. "
                           "Réessayez dans %(wait)s.")


def _tr(text: str, **values) -> str:
    """The refusal in the page's language (the guard runs inside requests; in French
    otherwise)."""
    if has_request_context():
        from flask_babel import gettext

        return gettext(text, **values)
    return text % values if values else text


def _wait(seconds: int) -> str:
    if has_request_context():
        return format_wait(seconds)
    return f"{max(1, int(seconds))} s"


def for_account(user_id: str | None) -> None:
    """Name the account the messages sent in this request are for (when nobody is
    signed in, e.g. a recovery code), so that the per-account throttle applies."""
    g.message_account = user_id


def current_account() -> str | None:
    """The account the messages of this request are for: named by :func:`for_account`,
    or the signed-in user."""
    if not has_request_context():
        return None
    account = g.get("message_account")
    if account:
        return str(account)
    from flask_login import current_user

    try:
        if current_user and current_user.is_authenticated:
            return str(current_user.user.id)
    except Exception:  # noqa: BLE001 - no login manager, no session: no account
        return None
    return None


def region_names(codes: list[str]) -> str:
    try:
        from babel import Locale

        names = Locale.parse("fr").territories
    except Exception:  # noqa: BLE001
        names = {}
    return ", ".join(names.get(code.upper(), code.upper()) for code in codes)


def region_refusal(to_e164: str, allowed_regions: list[str]) -> str | None:
    """Why a number cannot get SMS for its country (or as it is), None when it can.
    Counts nothing: a form may ask before anything is sent."""
    try:
        region = region_of(to_e164)
    except Exception:  # noqa: BLE001 - unparsable: not sendable
        return _tr(REFUSED_INVALID)
    allowed = [r.upper() for r in allowed_regions]
    if allowed and region not in allowed:
        log.info("SMS refused: region %s not allowed", region or "?")
        return _tr(REFUSED_REGION, regions=region_names(allowed))
    return None


def _digest(prefix: str, value: str) -> str:
    return hashlib.sha256(prefix.encode() + b":" + value.encode()).hexdigest()[:32]


def _once_per_request(channel: str, to: str, purpose: Purpose, decide) -> str | None:
    """Asked twice in one request (check, then send): counted once."""
    if not has_request_context():
        return decide()
    decided = g.setdefault("message_guard_decisions", {})
    key = (channel, to, purpose)
    if key not in decided:
        decided[key] = decide()
    return decided[key]


def _over(kv, name: str, subject: str, limits, now: float) -> int:
    """Count one message of ``subject`` against each limit in turn; the seconds to wait
    at the first one it is over (the next ones do not count it), else 0."""
    for limit in limits:
        wait = count(kv, name, subject, limit, now)
        if wait:
            return wait
    return 0


class SmsGuard:
    """``guard(to_e164, purpose)`` -> None when the SMS may go, else a French reason."""

    def __init__(self, kv, messaging, *, account_of=current_account) -> None:
        self.kv = kv
        self.allowed_regions = [r.upper() for r in messaging.sms_allowed_regions]
        self.per_destination = parse_limits(messaging.sms_per_destination)
        self.per_account = parse_limits(messaging.sms_per_account)
        self.daily_budget = messaging.sms_daily_budget
        self.reserve = self.daily_budget * messaging.sms_budget_reserve_percent // 100
        self.account_of = account_of

    def __call__(self, to_e164: str, purpose: Purpose = Purpose.CODE) -> str | None:
        return _once_per_request("sms", to_e164, purpose,
                                 lambda: self._decide(to_e164, purpose))

    def _decide(self, to_e164: str, purpose: Purpose) -> str | None:
        refusal = region_refusal(to_e164, self.allowed_regions)
        if refusal:
            return refusal
        now = clock()
        if purpose is not Purpose.NOTICE:
            wait = _over(self.kv, "sms_to", _digest("sms", to_e164), self.per_destination, now)
            if wait:
                log.warning("SMS refused: too many to one number")
                return _tr(REFUSED_DESTINATION, wait=_wait(wait))
            account = self.account_of()
            if account:
                wait = _over(self.kv, "sms_account", account, self.per_account, now)
                if wait:
                    log.warning("SMS refused: too many for account %s", account)
                    return _tr(REFUSED_ACCOUNT, wait=_wait(wait))
        if self.daily_budget >= 0 and not self._within_budget(purpose, now):
            return _tr(REFUSED_BUDGET)
        return None

    def _within_budget(self, purpose: Purpose, now: float) -> bool:
        """Counts the SMS against the day's budget. Codes count first against the share
        outside the reserve: one refused there is not counted against the whole budget,
        so that refused codes cannot eat the reserve."""
        day = time.strftime("%Y%m%d", time.gmtime(now))
        if purpose is Purpose.CODE:
            general = self.kv.incr(f"sms:budget-general:{day}", 2 * 86400)
            if general > self.daily_budget - self.reserve:
                if general == self.daily_budget - self.reserve + 1:
                    log.error("SMS daily budget outside the reserve (%d) spent",
                              self.daily_budget - self.reserve)
                return False
        spent = self.kv.incr(f"sms:budget:{day}", 2 * 86400)
        if spent > self.daily_budget:
            if spent == self.daily_budget + 1:
                log.error("SMS daily budget (%d) spent", self.daily_budget)
            return False
        return True


class EmailGuard:
    """``guard(address, purpose)`` -> None when the e-mail may go, else a French reason."""

    def __init__(self, kv, messaging, *, account_of=current_account) -> None:
        self.kv = kv
        self.per_destination = parse_limits(messaging.email_per_destination)
        self.per_account = parse_limits(messaging.email_per_account)
        self.account_of = account_of

    def __call__(self, address: str, purpose: Purpose = Purpose.CODE) -> str | None:
        if purpose is Purpose.NOTICE:
            return None
        return _once_per_request("email", address, purpose, lambda: self._decide(address))

    def _decide(self, address: str) -> str | None:
        from ..identity.users import normalize_email

        now = clock()
        wait = _over(self.kv, "email_to", _digest("email", normalize_email(address)),
                     self.per_destination, now)
        if wait:
            log.warning("e-mail refused: too many to one address")
            return _tr(REFUSED_EMAIL_DESTINATION, wait=_wait(wait))
        account = self.account_of()
        if account:
            wait = _over(self.kv, "email_account", account, self.per_account, now)
            if wait:
                log.warning("e-mail refused: too many for account %s", account)
                return _tr(REFUSED_EMAIL_ACCOUNT, wait=_wait(wait))
        return None


def make_sms_guard(kv, messaging) -> SmsGuard:
    return SmsGuard(kv, messaging)


def make_email_guard(kv, messaging) -> EmailGuard:
    return EmailGuard(kv, messaging)

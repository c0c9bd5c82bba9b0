"""What may be sent by SMS: SMS cost money and can be used to harass someone, so every
SMS passes this guard first (``Messenger(sms_guard=...)``).

A number is refused, with a French reason, when:

- its country is not in ``messaging.sms_allowed_regions`` (toll fraud goes through
  premium numbers abroad);
- too many SMS went to it lately (``messaging.sms_per_destination``, e.g.
  ``"3/hour, 6/day"``);
- too many SMS were asked for by one account (``messaging.sms_per_account``); the
  account is the one signed in, or the one a flow names with :func:`for_account`;
- the service's daily budget is spent (``messaging.sms_daily_budget``, a UTC day).

Counters live in the key-value store (shared between processes) and are incremented
before being compared, so concurrent sends cannot overshoot. Within one request, the
guard's answer for a number is given again without counting again (a view may ask
``messenger.check_sms`` before ``send_sms``).
"""

from __future__ import annotations

import hashlib
import logging
import time

from flask import g, has_request_context

from ..i18n import N_
from ..messaging.phone import region_of
from .ratelimit import count, parse_limits

log = logging.getLogger(__name__)

# Patched by tests to move time forward.
clock = time.time

REFUSED_REGION = N_("Les SMS ne peuvent être envoyés qu'à des numéros de : %(regions)s. "
                    "Choisissez de recevoir le message par e-mail.")
REFUSED_DESTINATION = N_("Trop de SMS ont été envoyés à ce numéro récemment. Réessayez plus "
                         "tard ou choisissez de recevoir le message par e-mail.")
REFUSED_ACCOUNT = N_("Trop de SMS ont été demandés pour ce compte récemment. Réessayez plus "
                     "tard ou choisissez de recevoir le message par e-mail.")
REFUSED_BUDGET = N_("L'envoi de SMS est momentanément indisponible. Réessayez demain ou "
                    "choisissez de recevoir le message par e-mail.")
REFUSED_INVALID = N_("Ce numéro de téléphone n'est pas valide.")


def _tr(text: str, **values: str) -> str:
    """The refusal in the page's language (the guard runs inside requests; in French
    otherwise)."""
    if has_request_context():
        from flask_babel import gettext

        return gettext(text, **values)
    return text % values if values else text


def for_account(user_id: str | None) -> None:
    """Name the account the SMS sent in this request are for (when nobody is signed
    in, e.g. a recovery code), so that the per-account throttle applies."""
    g.sms_account = user_id


def current_account() -> str | None:
    """The account the SMS of this request are for: named by :func:`for_account`, or
    the signed-in user."""
    if not has_request_context():
        return None
    account = g.get("sms_account")
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


def _digest(value: str) -> str:
    return hashlib.sha256(b"sms:" + value.encode()).hexdigest()[:32]


class SmsGuard:
    """``guard(to_e164)`` -> None when the SMS may go, else a French reason."""

    def __init__(self, kv, messaging, *, account_of=current_account) -> None:
        self.kv = kv
        self.allowed_regions = [r.upper() for r in messaging.sms_allowed_regions]
        self.per_destination = parse_limits(messaging.sms_per_destination)
        self.per_account = parse_limits(messaging.sms_per_account)
        self.daily_budget = messaging.sms_daily_budget
        self.account_of = account_of

    def __call__(self, to_e164: str) -> str | None:
        # Asked twice in one request (check_sms, then send_sms): counted once.
        if has_request_context():
            decided = g.setdefault("sms_guard_decisions", {})
            if to_e164 not in decided:
                decided[to_e164] = self._decide(to_e164)
            return decided[to_e164]
        return self._decide(to_e164)

    def _decide(self, to_e164: str) -> str | None:
        try:
            region = region_of(to_e164)
        except Exception:  # noqa: BLE001 - unparsable: not sendable
            return _tr(REFUSED_INVALID)
        if self.allowed_regions and region not in self.allowed_regions:
            log.info("SMS refused: region %s not allowed", region or "?")
            return _tr(REFUSED_REGION, regions=region_names(self.allowed_regions))
        now = clock()
        for limit in self.per_destination:
            if count(self.kv, "sms_to", _digest(to_e164), limit, now):
                log.warning("SMS refused: too many to one number")
                return _tr(REFUSED_DESTINATION)
        account = self.account_of()
        if account:
            for limit in self.per_account:
                if count(self.kv, "sms_account", account, limit, now):
                    log.warning("SMS refused: too many for account %s", account)
                    return _tr(REFUSED_ACCOUNT)
        if self.daily_budget >= 0:
            day = time.strftime("%Y%m%d", time.gmtime(now))
            spent = self.kv.incr(f"sms:budget:{day}", 2 * 86400)
            if spent > self.daily_budget:
                if spent == self.daily_budget + 1:
                    log.error("SMS daily budget (%d) spent", self.daily_budget)
                return _tr(REFUSED_BUDGET)
        return None


def make_sms_guard(kv, messaging) -> SmsGuard:
    return SmsGuard(kv, messaging)

"""Security notices: one rule for every message that tells an account's owner that
something changed or happened to their account (templates/messages/README.md).

- The notice goes by the owner's preferred contact mode: by SMS when they chose SMS, their
  number is verified and the notice has an SMS version; otherwise (or when the SMS
  cannot go) by e-mail to the contact address, or the login address when there is none.
  It is sent whatever ``notifications_email`` says.
- Its purpose is ``Purpose.NOTICE``: the message guard never caps it (an attacker
  filling a mailbox must not silence the notice of what he does next), though an SMS
  still needs an allowed country and the day's budget (its reserve included).
- It is sent by the request that made the change, after its commit, never from a
  response-close hook (a server may skip those when the browser drops the connection).
  A notice whose sending time must not show in the answer is queued instead
  (``later=True``, ``Messenger.send_later``).
- Every notice carries the recovery link and the help desk's page.
"""

from __future__ import annotations

import logging

from flask import current_app

from ..messaging.base import Purpose
from ..messaging.email import EmailMessage
from ..messaging.sms import SmsMessage
from ..messaging.templates import MessageTemplateError, render_message, render_sms
from ..persistence.models import User
from ..services import services
from .common import absolute_url

log = logging.getLogger(__name__)


def recovery_url() -> str:
    endpoint = "recovery.start" if "recovery.start" in current_app.view_functions \
        else "login.start"
    return absolute_url(endpoint)


def support_url() -> str:
    endpoint = "recovery.support" if "recovery.support" in current_app.view_functions \
        else "login.start"
    return absolute_url(endpoint)


def sms_allowed(user: User) -> bool:
    return bool(user.phone_number and user.phone_number_verified)


def notice_context(**context) -> dict:
    settings = services().settings
    support = settings.support
    return {"service_name": settings.service_name,
            "organisation_name": settings.organisation_name,
            "recovery_url": recovery_url(), "support_url": support_url(),
            "support_email": support.email, "support_phone": support.phone, **context}


def security_notice(user: User, name: str, *, later: bool = False,
                    to_address: str | None = None, **context) -> bool:
    """Send the notice ``name`` to ``user`` by the rule above; False when it could not go
    (never an exception). With ``later``, queue it and return True. ``to_address``: by
    e-mail to that address instead (the old login address, when it was replaced)."""
    svc = services()
    locale = user.locale or svc.settings.default_locale
    values = notice_context(**context)
    message: EmailMessage | SmsMessage | None = None
    if to_address is None and user.preferred_contact == "sms" and sms_allowed(user):
        try:
            message = SmsMessage(to_e164=user.phone_number,
                                 text=render_sms(name, locale, **values))
        except MessageTemplateError:
            message = None  # no SMS version of this notice: by e-mail
        except Exception:  # noqa: BLE001 - a broken template must not make a 500
            log.exception("cannot render the SMS %s", name)
    if message is not None and svc.messenger.check_sms(message.to_e164, Purpose.NOTICE) is None:
        if later:
            svc.messenger.send_later(message, Purpose.NOTICE)
            return True
        if svc.messenger.send_sms(message, Purpose.NOTICE):
            return True
    try:
        subject, text, html = render_message(name, locale, **values)
    except Exception:  # noqa: BLE001 - a broken template must not make a 500
        log.exception("cannot render the message %s", name)
        return False
    email = EmailMessage(to=to_address or user.contact_email or user.email, subject=subject,
                         text=text, html=html)
    if later:
        svc.messenger.send_later(email, Purpose.NOTICE)
        return True
    return svc.messenger.send_email(email, Purpose.NOTICE)

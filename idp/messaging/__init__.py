"""Messages to users: e-mail and SMS, their backends, phone numbers and templates.

The web layer builds one :class:`Messenger` with :func:`make_messenger` and calls
``send_email`` / ``send_sms``, which return False instead of raising. Bodies carry
codes and links: they are never logged (the outbox folder is where the demo reads them).
"""

from idp.messaging.base import DeliveryError, Purpose, mask_email, mask_phone
from idp.messaging.email import EmailMessage, OutboxEmailBackend, SmtpEmailBackend
from idp.messaging.messenger import SEND_FAILED_MESSAGE, Messenger, make_messenger
from idp.messaging.outbox import clear_outbox, read_outbox
from idp.messaging.phone import (InvalidPhone, format_international, format_national,
                                 is_mobile, parse_phone, region_of)
from idp.messaging.sms import HttpSmsBackend, OutboxSmsBackend, SmsMessage
from idp.messaging.templates import render_message, render_sms

__all__ = [
    "DeliveryError", "EmailMessage", "HttpSmsBackend", "InvalidPhone", "Messenger",
    "OutboxEmailBackend", "OutboxSmsBackend", "Purpose", "SEND_FAILED_MESSAGE", "SmsMessage",
    "SmtpEmailBackend", "clear_outbox", "format_international", "format_national",
    "is_mobile", "make_messenger", "mask_email", "mask_phone", "parse_phone",
    "read_outbox", "region_of", "render_message", "render_sms",
]

"""The one object the web layer talks to: send, retry a little, never raise."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from idp.config import PROJECT_ROOT
from idp.i18n import N_
from idp.metrics import MESSAGES
from idp.messaging.base import DeliveryError, Purpose, mask_email, mask_phone
from idp.messaging.email import (EmailBackend, EmailMessage, OutboxEmailBackend,
                                 SmtpEmailBackend)
from idp.messaging.sms import HttpSmsBackend, OutboxSmsBackend, SmsBackend, SmsMessage

log = logging.getLogger(__name__)

# French text (a msgid) for the page when a send returned False: show _(SEND_FAILED_MESSAGE).
SEND_FAILED_MESSAGE = N_("Le message n'a pas pu être envoyé, réessayez dans quelques instants.")

# (destination, purpose) -> None when the message may go, else a French reason.
Guard = Callable[[str, Purpose], "str | None"]


class Messenger:
    """Sends e-mails and SMS through the configured backends.

    ``send_email`` and ``send_sms`` return True once the backend took the message,
    False otherwise: they catch every exception, so a failing relay never makes a
    500. A transient failure is retried up to ``retries`` times, after ``backoff``,
    then twice that...; no new attempt starts once ``max_seconds`` have passed since
    the first one (each attempt is itself bounded by the backend's timeout).

    ``sms_guard(to_e164, purpose)`` and ``email_guard(address, purpose)`` may refuse a
    message (country not allowed, too many to one destination, daily budget spent...)
    by returning a French reason; the message is then not sent. ``purpose``
    (:class:`Purpose`) says how the message is capped: codes unless told otherwise.
    """

    def __init__(self, email_backend: EmailBackend, sms_backend: SmsBackend, retries: int = 2,
                 sms_guard: Guard | None = None, *, email_guard: Guard | None = None,
                 backoff: float = 0.25, max_seconds: float = 4.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.email_backend = email_backend
        self.sms_backend = sms_backend
        self.retries = max(0, retries)
        self.sms_guard = sms_guard
        self.email_guard = email_guard
        self.backoff = backoff
        self.max_seconds = max_seconds
        self._sleep = sleep

    def _deliver(self, send: Callable[[], None], what: str) -> bool:
        started = time.monotonic()
        for attempt in range(self.retries + 1):
            try:
                send()
                return True
            except DeliveryError as exc:
                log.warning("%s: attempt %d failed: %s", what, attempt + 1, exc)
                if not exc.transient:
                    return False
            except Exception as exc:  # noqa: BLE001 - never a 500 because of a message
                # Only the type: an exception's text might quote the message.
                log.error("%s: attempt %d failed with %s", what, attempt + 1,
                          type(exc).__name__)
                return False
            if attempt == self.retries:
                break
            delay = self.backoff * (2 ** attempt)
            if time.monotonic() - started + delay > self.max_seconds:
                break
            self._sleep(delay)
        log.warning("%s: given up", what)
        return False

    @staticmethod
    def _ask(guard: Guard | None, to: str, purpose: Purpose, what: str) -> str | None:
        if guard is None:
            return None
        try:
            return guard(to, purpose)
        except Exception as exc:  # noqa: BLE001
            log.error("%s guard failed with %s", what, type(exc).__name__)
            return SEND_FAILED_MESSAGE

    def _send(self, reason: str | None, send: Callable[[], None], what: str,
              channel: str) -> bool:
        if reason:
            log.info("%s: refused by the guard: %s", what, reason)
            MESSAGES.labels(channel, "refused").inc()
            return False
        sent = self._deliver(send, what)
        MESSAGES.labels(channel, "sent" if sent else "failed").inc()
        return sent

    def check_email(self, to: str, purpose: Purpose = Purpose.CODE) -> str | None:
        """The guard's French refusal reason for this address, None when allowed."""
        return self._ask(self.email_guard, to, purpose, "e-mail")

    def send_email(self, message: EmailMessage, purpose: Purpose = Purpose.CODE) -> bool:
        return self._send(self.check_email(message.to, purpose),
                          lambda: self.email_backend.send(message),
                          f"email to {mask_email(message.to)}", "email")

    def check_sms(self, to_e164: str, purpose: Purpose = Purpose.CODE) -> str | None:
        """The guard's French refusal reason for this number, None when allowed."""
        return self._ask(self.sms_guard, to_e164, purpose, "SMS")

    def send_sms(self, message: SmsMessage, purpose: Purpose = Purpose.CODE) -> bool:
        return self._send(self.check_sms(message.to_e164, purpose),
                          lambda: self.sms_backend.send(message),
                          f"SMS to {mask_phone(message.to_e164)}", "sms")


def resolve_outbox(outbox_dir: str) -> Path:
    """A relative ``messaging.outbox_dir`` is relative to the project root, like every
    path of the settings (``Settings.resolve_path``)."""
    path = Path(outbox_dir)
    return path if path.is_absolute() else PROJECT_ROOT / path


def make_messenger(messaging, outbox_path: Path | str | None = None, *,
                   sms_guard: Guard | None = None, email_guard: Guard | None = None
                   ) -> Messenger:
    """Build the messenger from an ``idp.config.MessagingSettings``.

    ``outbox_path`` is the outbox folder already resolved by the caller, e.g.
    ``settings.resolve_path(settings.messaging.outbox_dir)``; when omitted,
    ``messaging.outbox_dir`` is resolved the same way (against the project root).
    """
    outbox = Path(outbox_path) if outbox_path is not None else resolve_outbox(messaging.outbox_dir)
    if messaging.email_backend == "outbox":
        email_backend: EmailBackend = OutboxEmailBackend(outbox)
    elif messaging.email_backend == "smtp":
        email_backend = SmtpEmailBackend(
            messaging.smtp_host, messaging.smtp_port, messaging.smtp_security,
            messaging.smtp_username, messaging.smtp_password, messaging.smtp_timeout,
            messaging.email_from)
    else:
        raise ValueError(f"unknown email backend {messaging.email_backend!r} "
                         "(expected 'outbox' or 'smtp')")
    if messaging.sms_backend == "outbox":
        sms_backend: SmsBackend = OutboxSmsBackend(outbox)
    elif messaging.sms_backend == "http":
        sms_backend = HttpSmsBackend(messaging.sms_gateway_url, messaging.sms_gateway_auth_header,
                                     messaging.sms_body_template, messaging.sms_timeout)
    else:
        raise ValueError(f"unknown SMS backend {messaging.sms_backend!r} "
                         "(expected 'outbox' or 'http')")
    return Messenger(email_backend, sms_backend, messaging.send_retries, sms_guard,
                     email_guard=email_guard)

"""E-mail: the message, the outbox backend (demo, development) and SMTP."""

from __future__ import annotations

import email.message
import email.utils
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from idp.messaging.base import DeliveryError, has_line_break, mask_email
from idp.messaging.outbox import deliver_to_outbox

log = logging.getLogger(__name__)

SMTP_SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str = ""

    def __repr__(self) -> str:  # the body carries codes and links: keep it out of logs
        return f"EmailMessage(to={mask_email(self.to)!r}, subject={self.subject!r})"


class EmailBackend(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand the message over, or raise :class:`DeliveryError`."""


class OutboxEmailBackend:
    """Writes every message into ``outbox_dir`` (see :mod:`idp.messaging.outbox`)."""

    def __init__(self, outbox_dir: Path | str) -> None:
        self.outbox_dir = Path(outbox_dir)

    def send(self, message: EmailMessage) -> None:
        if has_line_break(message.to, message.subject):
            raise DeliveryError("line break in a header", transient=False)
        path = deliver_to_outbox(self.outbox_dir, "email", message.to, message.subject,
                                 message.text, message.html)
        log.info("email to %s written to the outbox: %s (%s)", mask_email(message.to),
                 message.subject, path.name)


class SmtpEmailBackend:
    """Sends through an SMTP relay, as multipart text + HTML.

    ``security``: "starttls" (port 587, the upgrade is mandatory), "tls" (implicit TLS,
    port 465) or "none" (a relay on the same host or network only).
    """

    def __init__(self, host: str, port: int, security: str = "starttls", username: str = "",
                 password: str = "", timeout: float = 10.0,
                 sender: str = "Compte usager <no-reply@example.org>",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if security not in SMTP_SECURITY:
            raise ValueError(f"smtp security must be one of {SMTP_SECURITY}, not {security!r}")
        if not email.utils.parseaddr(sender)[1]:
            raise ValueError("the e-mail sender has no address")
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.timeout = timeout
        self.sender = sender
        self.ssl_context = ssl_context or ssl.create_default_context()

    def build(self, message: EmailMessage) -> email.message.EmailMessage:
        if has_line_break(message.to, message.subject):
            raise DeliveryError("line break in a header", transient=False)
        mime = email.message.EmailMessage()
        mime["From"] = self.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = email.utils.format_datetime(datetime.now(timezone.utc))
        domain = email.utils.parseaddr(self.sender)[1].rpartition("@")[2] or None
        mime["Message-ID"] = email.utils.make_msgid(domain=domain)
        # RFC 3834: no auto-reply (holiday messages...) to this one.
        mime["Auto-Submitted"] = "auto-generated"
        mime.set_content(message.text)
        if message.html:
            mime.add_alternative(message.html, subtype="html")
        return mime

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=self.ssl_context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            smtp.ehlo()
            smtp.starttls(context=self.ssl_context)
            smtp.ehlo()
        return smtp

    def send(self, message: EmailMessage) -> None:
        mime = self.build(message)
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(mime)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"recipient refused ({codes})",
                                transient=all(400 <= c < 500 for c in codes)) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP error {exc.smtp_code}",
                                transient=400 <= exc.smtp_code < 500 or exc.smtp_code < 0) from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise DeliveryError("SMTP server disconnected", transient=True) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError("the SMTP server does not offer STARTTLS or AUTH",
                                transient=False) from exc
        except smtplib.SMTPException as exc:
            raise DeliveryError(f"SMTP error: {type(exc).__name__}", transient=False) from exc
        except OSError as exc:  # refused, unreachable, timeout, TLS failure
            raise DeliveryError(f"SMTP connection failed: {type(exc).__name__}",
                                transient=True) from exc
        log.info("email to %s sent through %s:%s: %s", mask_email(message.to), self.host,
                 self.port, message.subject)

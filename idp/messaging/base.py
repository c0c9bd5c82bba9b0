"""What the messaging backends share: the delivery error and log-safe recipients."""

from __future__ import annotations

import enum


class Purpose(enum.Enum):
    """Why a message goes out, which decides how it is capped (security.message_guard)."""

    # A code or a link someone asked for, who may not own the destination.
    CODE = "code"
    # A code to get back into an account (password recovery).
    SIGN_IN = "sign_in"
    # A security notice to the owner (password changed, account blocked...).
    NOTICE = "notice"


class DeliveryError(Exception):
    """A message could not be handed over.

    ``transient`` failures (timeouts, refused connections, 4xx SMTP replies, HTTP 429
    and 5xx) are worth retrying; the others are not. The text of a DeliveryError is
    meant for logs: it never holds the message body.
    """

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.transient = transient


def mask_email(address: str) -> str:
    """``jean.dupond@example.org`` -> ``j***@example.org``, for logs."""
    local, at, domain = (address or "").strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(e164: str) -> str:
    """``+33612345678`` -> ``+33******78``, for logs."""
    number = (e164 or "").strip()
    if len(number) <= 6:
        return "***"
    return number[:3] + "*" * (len(number) - 5) + number[-2:]


def has_line_break(*values: str) -> bool:
    return any("\r" in v or "\n" in v for v in values)

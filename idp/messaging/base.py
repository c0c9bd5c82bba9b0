"""What the messaging backends share: the delivery error and log-safe recipients."""

from __future__ import annotations


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

"""SMS: the message, the outbox backend (demo, development) and an HTTP gateway."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests

from idp.messaging.base import DeliveryError, mask_phone
from idp.messaging.outbox import deliver_to_outbox

log = logging.getLogger(__name__)

DEFAULT_BODY_TEMPLATE = '{"to": "{to}", "text": "{text}"}'
_PLACEHOLDER = re.compile(r"\{(to|text)\}")
_HEADER_LINE = re.compile(r"^([A-Za-z0-9!#$%&'*+.^_`|~-]+):\s*(.+)$")


@dataclass(frozen=True)
class SmsMessage:
    to_e164: str
    text: str

    def __repr__(self) -> str:  # the text carries codes: keep it out of logs
        return f"SmsMessage(to_e164={mask_phone(self.to_e164)!r})"


class SmsBackend(Protocol):
    def send(self, message: SmsMessage) -> None:
        """Hand the message over, or raise :class:`DeliveryError`."""


class OutboxSmsBackend:
    """Writes every message into ``outbox_dir`` (see :mod:`idp.messaging.outbox`)."""

    def __init__(self, outbox_dir: Path | str) -> None:
        self.outbox_dir = Path(outbox_dir)

    def send(self, message: SmsMessage) -> None:
        path = deliver_to_outbox(self.outbox_dir, "sms", message.to_e164, "", message.text)
        log.info("SMS to %s written to the outbox (%s)", mask_phone(message.to_e164), path.name)


def parse_auth_header(value: str) -> dict[str, str]:
    """``"X-Api-Key: abc"`` -> that header; ``"Bearer abc"`` -> ``Authorization``."""
    value = (value or "").strip()
    if not value:
        return {}
    match = _HEADER_LINE.match(value)
    if match:
        return {match.group(1): match.group(2).strip()}
    return {"Authorization": value}


def render_body(template: str, to: str, text: str) -> str:
    """Fill ``{to}`` and ``{text}`` with JSON-escaped values (no surrounding quotes:
    the template has them), in one pass so a value is never substituted again."""
    values = {"to": to, "text": text}
    return _PLACEHOLDER.sub(lambda m: json.dumps(values[m.group(1)])[1:-1], template)


class HttpSmsBackend:
    """POSTs each SMS to a gateway, the body built from ``body_template``."""

    def __init__(self, url: str, auth_header: str = "", body_template: str = DEFAULT_BODY_TEMPLATE,
                 timeout: float = 5.0, session: requests.Session | None = None) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("the SMS gateway URL must be an http(s) URL")
        if "{to}" not in body_template or "{text}" not in body_template:
            raise ValueError("the SMS body template needs {to} and {text}")
        self.url = url
        self.headers = parse_auth_header(auth_header)
        self.body_template = body_template
        self.timeout = timeout
        self.session = session or requests.Session()
        try:
            json.loads(render_body(body_template, "+33600000000", "test"))
            self.content_type = "application/json"
        except ValueError:
            self.content_type = "text/plain; charset=utf-8"

    def send(self, message: SmsMessage) -> None:
        body = render_body(self.body_template, message.to_e164, message.text)
        headers = {"Content-Type": self.content_type, **self.headers}
        try:
            response = self.session.post(self.url, data=body.encode("utf-8"), headers=headers,
                                         timeout=self.timeout, allow_redirects=False)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise DeliveryError(f"SMS gateway unreachable: {type(exc).__name__}",
                                transient=True) from exc
        except requests.RequestException as exc:
            raise DeliveryError(f"SMS gateway request failed: {type(exc).__name__}",
                                transient=False) from exc
        status = response.status_code
        response.close()
        if not 200 <= status < 300:
            raise DeliveryError(f"SMS gateway answered HTTP {status}",
                                transient=status in (408, 425, 429) or status >= 500)
        log.info("SMS to %s handed to the gateway (HTTP %s)", mask_phone(message.to_e164), status)

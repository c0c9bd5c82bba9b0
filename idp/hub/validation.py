"""Checks of the JSON the apps send: each failure is a ``HubError`` naming the field."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from ..persistence.models import Client
from . import HubError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def invalid(field: str, message: str) -> HubError:
    return HubError("invalid_request", f"{field}: {message}")


def text(data: dict[str, Any], field: str, max_length: int, *, required: bool = True,
         multiline: bool = False, default: str = "") -> str:
    value = data.get(field)
    if value is None:
        if required:
            raise invalid(field, "required")
        return default
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    value = value.strip()
    if required and not value:
        raise invalid(field, "must not be empty")
    if len(value) > max_length:
        raise invalid(field, f"at most {max_length} characters")
    if _CONTROL.search(value) or (not multiline and ("\n" in value or "\r" in value)):
        raise invalid(field, "control characters are not allowed")
    return value


def integer(data: dict[str, Any], field: str, low: int, high: int) -> int | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(field, f"must be an integer between {low} and {high}")
    return value


def timestamp(data: dict[str, Any], field: str) -> dt.datetime | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be an RFC 3339 date-time")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise invalid(field, "must carry a time zone offset")
        parsed = parsed.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise invalid(field, "must be an RFC 3339 date-time") from None
    if not 2000 <= parsed.year <= 2200:
        raise invalid(field, "out of range")
    return parsed


def _app_hosts(client: Client) -> set[str]:
    urls = [*client.redirect_uris, client.home_url]
    return {urlsplit(u).netloc for u in urls if u}


def app_link(data: dict[str, Any], field: str, client: Client) -> str:
    """A link back into the app: https (http on the loopback), on one of the hosts the
    app is registered with, so that "Mon compte" never shows a link elsewhere."""
    value = text(data, field, 1000, required=False)
    if not value:
        return ""
    parts = urlsplit(value)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise invalid(field, "must be an https URL")
    if parts.netloc not in _app_hosts(client):
        raise invalid(field, "must point to the app's own site (a host of its redirect URIs)")
    return value


def json_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise HubError("invalid_request", "the body must be a JSON object")
    return data

"""The per-application service container and request-aware helpers used by views."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app, request

from .config import Settings
from .persistence.db import Database
from .persistence.kv import KeyValueStore
from .security import audit as audit_log
from .security.passwords import PasswordService

if TYPE_CHECKING:  # the protocol package imports this module: no cycle at import time
    from .oidc.keys import KeyStore


@dataclass
class Services:
    settings: Settings
    db: Database
    kv: KeyValueStore
    keys: KeyStore
    passwords: PasswordService
    secret_key: str
    messenger: Any = None
    captcha: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


def services() -> Services:
    return current_app.extensions["idp"]


def client_ip() -> str | None:
    # Behind a proxy, ProxyFix (configured by the deployment) sets remote_addr.
    return request.remote_addr


def user_agent() -> str:
    # Stored with audit events and sessions. gunicorn refuses a NUL in a header, other
    # servers may not, and PostgreSQL cannot store one (security/input_guard.py).
    return (request.user_agent.string or "").replace("\x00", "")[:300]


def audit(type_: str, *, outcome: str = "success", user_id: str | None = None,
          client_id: str | None = None, **details: Any) -> None:
    """Record an audit event for the current request, in the request's transaction."""
    audit_log.record_event(services().db.session, type_, outcome=outcome, user_id=user_id,
                           client_id=client_id, ip_address=client_ip(),
                           user_agent=user_agent(), details=details)

"""The per-application service container and request-aware helpers used by views."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app, request

from .config import Settings
from .persistence.client_cache import ClientCache
from .persistence.db import Database
from .persistence.kv import KeyValueStore
from .security import audit as audit_log
from .security.passwords import PasswordService

if TYPE_CHECKING:  # these packages import this module: no cycle at import time
    from .messaging.messenger import Messenger
    from .oidc.keys import KeyStore
    from .oidc.logout_propagation import Propagator
    from .oidc.server import AuthorizationServer
    from .oidc.tokens import TokenService
    from .security.captcha import Captcha
    from .security.ratelimit import ClientFailures


@dataclass
class Services:
    """What the application is built from; one per application (``create_app``)."""

    settings: Settings
    db: Database
    kv: KeyValueStore
    keys: KeyStore
    tokens: TokenService
    clients: ClientCache
    passwords: PasswordService
    messenger: Messenger
    captcha: Captcha
    secret_key: str
    # Salt of pairwise subject identifiers (settings.pairwise_salt, or the secret key).
    pairwise_salt: str
    # Set once the application is built: the OAuth 2.0 server and the client-failure limit.
    oauth: AuthorizationServer = field(init=False)
    client_failures: ClientFailures = field(init=False)
    # Back-channel logout in this process (None when run by a timer instead).
    logout_propagator: Propagator | None = field(init=False, default=None)


def services() -> Services:
    return current_app.extensions["idp"]


def client_ip() -> str | None:
    # Behind a proxy, ProxyFix (configured by the deployment) sets remote_addr.
    return request.remote_addr


def user_agent() -> str:
    # Stored with audit events and sessions; PostgreSQL cannot store a NUL, which a
    # server may let through in a header (security/input_guard.py).
    return (request.user_agent.string or "").replace("\x00", "")[:300]


def audit(type_: str, *, outcome: str = "success", user_id: str | None = None,
          client_id: str | None = None, **details: Any) -> None:
    """Record an audit event for the current request, in the request's transaction."""
    audit_log.record_event(services().db.session, type_, outcome=outcome, user_id=user_id,
                           client_id=client_id, ip_address=client_ip(),
                           user_agent=user_agent(), details=details)

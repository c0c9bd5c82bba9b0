"""Errors answered to relying parties, in the audit trail: what the console shows as a
client's recent errors (a wrong secret, an expired code, an unregistered redirect URI, a
refused registration...).

An event names the client only when it is registered (an unknown ``client_id`` is
anyone's guess and would fill the trail with noise). The failed request's own changes
are rolled back first: a failure that must stick (a replayed code revoking its family)
was committed before the error was raised, and nothing else of a failed request is kept.
"""

from __future__ import annotations

from typing import Any

from flask import request as flask_request

from ..security.audit import record_event
from ..services import Services, client_ip, user_agent

# Flask endpoint -> the event's type prefix. The authorization endpoint records its own
# (idp.oidc.endpoints.authorize).
EVENT_PREFIXES = {
    "oidc.token": "token",
    "oidc.introspect": "introspection",
    "oidc.revoke": "revocation",
    "oidc.client_registration": "registration",
    "oidc.client_configuration": "registration",
}
MAX_VALUE_LENGTH = 300


def record_client_error(ctx: Services, prefix: str, *, error: str, description: str | None,
                        client_id: str | None, **details: Any) -> None:
    """``<prefix>.error`` (outcome failure) for ``client_id`` when it is a registered
    client, or for no client when ``client_id`` is None; committed at once."""
    session = ctx.db.session
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 64
                                  or "\x00" in client_id  # from a Basic header
                                  or ctx.clients.get(session, client_id) is None):
        return
    session.rollback()
    clean = {key: _storable(value) for key, value in details.items() if value is not None}
    record_event(session, f"{prefix}.error", outcome="failure", client_id=client_id,
                 ip_address=client_ip(), user_agent=user_agent(),
                 details={"error": error, "description": _storable(description or ""),
                          **clean})
    session.commit()


def _storable(value: Any) -> Any:
    """A string cut to its first characters, without NUL (PostgreSQL cannot store one;
    headers reach here without the input guard)."""
    return value.replace("\x00", "")[:MAX_VALUE_LENGTH] if isinstance(value, str) else value


def client_id_of(oauth_request, basic_client_id: str | None) -> str | None:
    """The client a failed token, introspection or revocation request came from:
    authenticated, or named in the form or the Basic header."""
    client = getattr(oauth_request, "client", None)
    if client is not None:
        return client.client_id
    named = oauth_request.payload.client_id
    if isinstance(named, str) and named:
        return named
    return basic_client_id or None


def audit_error_response(ctx: Services, oauth_request, error, basic_client_id: str | None
                         ) -> None:
    """Called by the server for every OAuth 2.0 error it answers."""
    prefix = EVENT_PREFIXES.get(flask_request.endpoint or "")
    if prefix is None:
        return
    details: dict[str, Any] = dict(getattr(oauth_request, "audit_details", None) or {})
    if prefix == "registration":
        # A failed registration made no client; management names its client in the URL.
        # (Its JSON body is not read again here: it may be what failed.)
        client_id = (flask_request.view_args or {}).get("client_id")
    else:
        client_id = client_id_of(oauth_request, basic_client_id)
        details["grant_type"] = oauth_request.payload.grant_type
    record_client_error(ctx, prefix, error=getattr(error, "error", "") or "",
                        description=getattr(error, "description", None), client_id=client_id,
                        **details)

"""The hub's JSON APIs under ``/api/``, called by démarche apps with the provider's own
access tokens (docs/api.md, ``/api/openapi.json``).

Every answer is JSON (errors as ``{"error", "error_description"}``); these paths never
read or write the browser session (``idp/paths.py``) and need no CSRF token. Each
app's calls are counted (``hub.api_per_client``).
"""

from __future__ import annotations

from flask import Blueprint

from ..oidc.claims import register_scope

bp = Blueprint("api", __name__, url_prefix="/api")

# Scopes of the APIs (no claims: they give access to the APIs, not to the user's data).
API_SCOPES = {
    "requests:write": "file and update the requests of users the app knows",
    "notifications:write": "send notifications to users the app knows",
    "documents:read": "read a wallet document the user picked for the app",
    "subscriptions:read": "read the subscribers of a theme",
    "events:read": "read the events of users the app knows (deleted accounts)",
}
for _scope in API_SCOPES:
    register_scope(_scope, (), lambda _session, _user: {})

from . import views  # noqa: E402,F401  (registers the routes on ``bp``)

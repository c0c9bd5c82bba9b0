"""Token endpoint (RFC 6749 §3.2): authorization_code, refresh_token, client_credentials."""

from __future__ import annotations

from flask import Response

from ...services import services


def token() -> Response:
    response = services().extras["oidc_server"].create_token_response()
    if response.status_code == 400 and (response.get_json(silent=True) or {}).get(
            "error") == "invalid_client":
        # Wrong client credentials are always 401 (RFC 6749 §5.2 allows it; clients
        # using Basic MUST get it with WWW-Authenticate).
        response.status_code = 401
        if "WWW-Authenticate" not in response.headers:
            response.headers["WWW-Authenticate"] = 'Basic realm="token", error="invalid_client"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response

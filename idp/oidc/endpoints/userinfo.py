"""UserInfo endpoint (OIDC Core §5.3), GET and POST, bearer token (RFC 6750)."""

from __future__ import annotations

from flask import Response, jsonify, request

from ...services import services
from .. import claims as claims_mod


def _bearer_error(status: int, error: str | None, description: str = "") -> Response:
    header = 'Bearer realm="userinfo"'
    if error:
        header += f', error="{error}"'
        if description:
            header += f', error_description="{description}"'
    response = jsonify({"error": error} if error else {})
    response.status_code = status
    response.headers["WWW-Authenticate"] = header
    response.headers["Cache-Control"] = "no-store"
    return response


def _token_from_request() -> tuple[str | None, bool]:
    """(token, several_methods_used)."""
    header = request.headers.get("Authorization", "")
    found = []
    if header[:7].lower() == "bearer ":
        found.append(header[7:].strip())
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded" \
            and request.form.get("access_token"):
        found.append(request.form["access_token"])
    return (found[0] if found else None), len(found) > 1


def userinfo() -> Response:
    token, ambiguous = _token_from_request()
    if ambiguous:
        return _bearer_error(400, "invalid_request", "one token method only")
    if not token:
        return _bearer_error(401, None)
    server = services().extras["oidc_server"]
    ctx = server.ctx
    claims = ctx.tokens.decode_access_token(token)
    if claims is None:
        return _bearer_error(401, "invalid_token")
    with ctx.db.reading() as session:
        found = ctx.tokens.active_grant_and_user(session, claims)
    if found is None:  # revoked, dead family, disabled user, or a client_credentials token
        return _bearer_error(401, "invalid_token")
    grant, user = found
    if "openid" not in claims.get("scope", "").split():
        return _bearer_error(403, "insufficient_scope")
    client = server.query_client(grant.client_id)
    if client is None:
        return _bearer_error(401, "invalid_token")
    names = claims_mod.claims_for(claims["scope"], grant.claims_request, "userinfo")
    body = claims_mod.user_claims(user, names)
    body["sub"] = claims_mod.subject_for(user.id, client, ctx.pairwise_salt)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response

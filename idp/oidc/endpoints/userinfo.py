"""UserInfo endpoint (OIDC Core §5.3), GET and POST, bearer token (RFC 6750).

Served below Flask with the other endpoints relying parties' servers call
(:mod:`idp.oidc.client_endpoints`): this module takes the request's parts and returns
``(status, payload, headers)``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .. import claims as claims_mod

Answer = tuple[int, dict[str, Any], list[tuple[str, str]]]


def bearer_error(status: int, error: str | None, description: str = "") -> Answer:
    header = 'Bearer realm="userinfo"'
    if error:
        header += f', error="{error}"'
        if description:
            header += f', error_description="{description}"'
    return status, ({"error": error} if error else {}), [("WWW-Authenticate", header)]


def bearer_token(authorization: str | None, form: dict[str, str]) -> tuple[str | None, bool]:
    """The access token of the request and whether it came by several methods (which
    RFC 6750 §2 forbids): the ``Authorization`` header, or a form body's ``access_token``."""
    header = authorization or ""
    found = []
    if header[:7].lower() == "bearer ":
        found.append(header[7:].strip())
    if form.get("access_token"):
        found.append(form["access_token"])
    return (found[0] if found else None), len(found) > 1


def userinfo(server, token: str | None, ambiguous: bool) -> Answer:
    """The claims the access ``token`` gives access to, or the bearer error.
    ``server``: the one whose client cache and context to use."""
    if ambiguous:
        return bearer_error(400, "invalid_request", "one token method only")
    if not token:
        return bearer_error(401, None)
    ctx = server.ctx
    claims = ctx.tokens.decode_access_token(token)
    if claims is None:
        return bearer_error(401, "invalid_token")
    with ctx.db.single_statement() as connection:
        found = ctx.tokens.active_grant_and_user(connection, claims)
        if found is None:  # revoked, dead family, disabled user, a client_credentials token
            return bearer_error(401, "invalid_token")
        grant, user = found
        if "openid" not in claims.get("scope", "").split():
            return bearer_error(403, "insufficient_scope")
        names = claims_mod.claims_for(claims["scope"], grant.claims_request, "userinfo")
        # A claim source may read more (the relations scope): an ORM session on the same
        # connection; it sends nothing until a source uses it (about 6 µs of CPU).
        with Session(bind=connection) as session:
            body = claims_mod.user_claims(user, names, session)
    client = server.query_client(grant.client_id)  # after: one pooled connection at a time
    if client is None:
        return bearer_error(401, "invalid_token")
    body["sub"] = claims_mod.subject_for(user.id, client, ctx.pairwise_salt)
    return 200, body, []

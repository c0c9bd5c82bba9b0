"""UserInfo endpoint (OIDC Core §5.3), GET and POST, with a bearer access token
(RFC 6750: the Authorization header or a form body's ``access_token``)."""

from __future__ import annotations

from flask import Response, jsonify

from ...services import services
from .. import claims as claims_mod
from ..resource import current_token, require_oauth


@require_oauth()
def userinfo() -> Response:
    token = current_token
    grant, user = token.grant, token.user
    if user is None:  # a client's own token (client_credentials): no user to describe
        return require_oauth.invalid_token()
    if "openid" not in token.scopes:
        return require_oauth.insufficient_scope()
    svc = services()
    names = claims_mod.claims_for(token.get_scope(), grant.claims_request, "userinfo",
                                  grant.claims)
    body = claims_mod.user_claims(user, names, svc.db.session)
    client = svc.oauth.query_client(grant.client_id)
    if client is None:
        return require_oauth.invalid_token()
    body["sub"] = claims_mod.subject_for(user.id, client, svc.pairwise_salt)
    return jsonify(body)

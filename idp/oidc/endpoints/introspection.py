"""RFC 7662 token introspection, for authenticated clients."""

from __future__ import annotations

from authlib.oauth2.rfc7662 import IntrospectionEndpoint as AuthlibIntrospectionEndpoint

from ..claims import subject_for
from ..grants import CONFIDENTIAL_AUTH_METHODS
from .token_refs import AccessTokenRef, find_token


class IntrospectionEndpoint(AuthlibIntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return find_token(self.server.ctx, token_string, token_type_hint)

    def check_permission(self, token, client, request) -> bool:
        # A client sees its own tokens; a resource server registered with the
        # "introspection" scope sees every token.
        return token.check_client(client) or "introspection" in client.scope.split()

    def introspect_token(self, token) -> dict:
        ctx = self.server.ctx
        if isinstance(token, AccessTokenRef):
            claims = token.claims
            return {"active": True, "token_type": "Bearer", "scope": claims.get("scope", ""),
                    "client_id": claims["client_id"], "sub": claims["sub"],
                    "aud": claims.get("aud"), "iss": claims["iss"], "exp": claims["exp"],
                    "iat": claims["iat"], "jti": claims["jti"]}
        item, grant = token.item, token.grant
        client = self.server.query_client(item.client_id)
        sub = subject_for(item.user_id, client, ctx.pairwise_salt) if client else item.user_id
        return {"active": True, "token_type": "refresh_token", "scope": grant.scope,
                "client_id": item.client_id, "sub": sub, "iss": ctx.settings.issuer,
                "exp": int(item.expires_at.timestamp()), "iat": int(item.created_at.timestamp())}


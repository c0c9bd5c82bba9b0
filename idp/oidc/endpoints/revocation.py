"""RFC 7009 token revocation."""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint as AuthlibRevocationEndpoint

from ...security.audit import record_event
from ...identity.grants import revoke_grant
from ..grants import ALL_AUTH_METHODS
from ..tokens import revoke_access_token
from .token_refs import AccessTokenRef, find_token


class RevocationEndpoint(AuthlibRevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return find_token(self.server.ctx, token_string, token_type_hint)

    def revoke_token(self, token, request):
        session = self.server.ctx.db.session
        if isinstance(token, AccessTokenRef):
            revoke_access_token(session, token.claims)
            user_id = None
        else:
            # Revoking a refresh token ends its family, access tokens included (§2.1).
            revoke_grant(session, token.item.grant_id, "revoked_by_client")
            user_id = token.item.user_id
        record_event(session, "token.revoked", user_id=user_id, client_id=token.client_id,
                     details={"token_type": token.kind})
        session.commit()

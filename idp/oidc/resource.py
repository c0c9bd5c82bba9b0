"""Resources protected by the provider's own access tokens (RFC 6750), with Authlib's
Flask ``ResourceProtector``.

    from idp.oidc.resource import current_token, require_oauth

    @bp.get("/api/things")
    @require_oauth("things:read")
    def things():
        token = current_token  # an AccessToken: .client_id, .subject, .user, .scopes

Provisional copy on the hub branch, with the interface the lead is landing on main
(main's version replaces it at the merge).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.integrations.flask_oauth2 import current_token as _authlib_current_token
from authlib.oauth2.rfc6750 import BearerTokenValidator

from ..persistence.models import Grant, User
from ..services import services
from .tokens import live_grant_and_user

current_token: AccessToken = _authlib_current_token  # type: ignore[assignment]


@dataclass
class TokenStatus:
    active: bool
    grant: Grant | None = None
    user: User | None = None


class AccessToken:
    """A validated access token: its claims, and what a resource needs of them."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims
        self.status: TokenStatus | None = None

    @property
    def client_id(self) -> str:
        return self.claims["client_id"]

    @property
    def subject(self) -> str:
        return self.claims["sub"]

    @property
    def user(self) -> User | None:
        return self.status.user if self.status else None

    @property
    def grant(self) -> Grant | None:
        return self.status.grant if self.status else None

    @property
    def scopes(self) -> list[str]:
        return self.claims.get("scope", "").split()

    def get_scope(self) -> str:
        return self.claims.get("scope", "")

    def is_expired(self) -> bool:
        return False  # decode_access_token refuses an expired token

    def is_revoked(self) -> bool:
        if self.status is None:
            ctx = services().extras["client_server"].ctx
            with ctx.db.single_statement() as connection:
                active = ctx.tokens.is_access_token_active(connection, self.claims)
            status = TokenStatus(active)
            if active and self.claims.get("gid"):
                found = live_grant_and_user(services().db.session, self.claims["gid"])
                status = TokenStatus(True, *found) if found else TokenStatus(False)
            self.status = status
        return not self.status.active


class AccessTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> AccessToken | None:
        claims = services().extras["client_server"].ctx.tokens.decode_access_token(token_string)
        return AccessToken(claims) if claims is not None else None


require_oauth = ResourceProtector()
require_oauth.register_token_validator(AccessTokenValidator())

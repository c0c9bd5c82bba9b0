"""Resources protected by the provider's own access tokens (RFC 6750), with Authlib's
Flask ``ResourceProtector``: userinfo, and the APIs démarche apps call.

    from idp.oidc.resource import current_token, require_oauth

    @bp.get("/api/things")
    @require_oauth("things:read")
    def things():
        token = current_token  # an AccessToken: .client_id, .subject, .user, .scopes

A token is accepted when it is one of ours (signature, ``typ: at+jwt``, issuer, expiry)
and still active: not revoked, and for a user's token its family alive and its user
enabled (:meth:`idp.oidc.tokens.TokenService.status`).
"""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import ResourceProtector as FlaskResourceProtector
from authlib.integrations.flask_oauth2 import current_token as authlib_current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from flask import request

from ..persistence.models import Grant, User
from ..services import services
from .tokens import TokenStatus

REALM = "compte-usager"

current_token: AccessToken = authlib_current_token  # type: ignore[assignment]


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
        """``sub`` as the client knows it (pairwise or public); the client's own id for a
        ``client_credentials`` token."""
        return self.claims["sub"]

    @property
    def user(self) -> User | None:
        """The user behind a user's token (None for a client's own token)."""
        return self.status.user if self.status else None

    @property
    def grant(self) -> Grant | None:
        """The token family of a user's token (None for a client's own token)."""
        return self.status.grant if self.status else None

    @property
    def scopes(self) -> list[str]:
        return self.claims.get("scope", "").split()

    def get_scope(self) -> str:
        return self.claims.get("scope", "")

    def is_revoked(self) -> bool:
        if self.status is None:
            svc = services()
            self.status = svc.tokens.status(svc.db.session, self.claims)
        return not self.status.active


class ScopeMissing(InvalidTokenError):
    """RFC 6750 §3.1: 403 with the error in the Bearer challenge too."""

    error = "insufficient_scope"
    status_code = 403
    description = "The access token does not grant the scope this resource needs."


class AccessTokenValidator(BearerTokenValidator):
    """Our own JWT access tokens, checked against the database for revocation."""

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        claims = services().tokens.decode_access_token(token_string)
        return AccessToken(claims) if claims is not None else None

    def validate_token(self, token, scopes, request) -> None:
        if token is None or token.is_revoked():
            raise InvalidTokenError(realm=self.realm)
        if self.scope_insufficient(token.get_scope(), scopes):
            raise ScopeMissing(realm=self.realm)


class TokenSentTwice(InvalidTokenError):
    """RFC 6750 §2: one method only; answered with a Bearer challenge (§3.1)."""

    error = "invalid_request"
    status_code = 400
    description = "Use one method only to send the access token."


class TokenMissing(OAuth2Error):
    """RFC 6750 §3.1: a request without any token gets a challenge with no error code."""

    status_code = 401

    def get_body(self):
        return []

    def get_headers(self):
        return [*super().get_headers(), ("WWW-Authenticate", f'Bearer realm="{REALM}"')]


class ResourceProtector(FlaskResourceProtector):
    def parse_request_authorization(self, request_):
        """The Authorization header, or else a form body's ``access_token`` (RFC 6750
        §2.2); a token sent both ways, or twice, is refused (§2)."""
        in_body = request.form.getlist("access_token") if request.mimetype == \
            "application/x-www-form-urlencoded" else []
        header = request_.headers.get("Authorization")
        if len(in_body) > 1 or (in_body and header):
            raise TokenSentTwice(realm=REALM)
        if in_body:
            return self.get_token_validator("bearer"), in_body[0]
        if not header:
            raise TokenMissing()
        return super().parse_request_authorization(request_)

    def invalid_token(self):
        """Answer 401 ``invalid_token``, as for a token that failed validation."""
        self.raise_error_response(InvalidTokenError(realm=REALM))

    def insufficient_scope(self):
        """Answer 403 ``insufficient_scope``."""
        self.raise_error_response(ScopeMissing(realm=REALM))


require_oauth = ResourceProtector()
require_oauth.register_token_validator(AccessTokenValidator(realm=REALM))

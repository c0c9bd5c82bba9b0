"""The Authlib authorization server, composed from grant classes and endpoints.

One Flask ``AuthorizationServer`` answers every OAuth 2.0 endpoint, each a Flask view
(``idp.oidc.endpoints``): authorization, token, introspection and revocation; userinfo
is a resource protected by :mod:`idp.oidc.resource`.
"""

from __future__ import annotations

import binascii
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, UnsupportedResponseTypeError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import g
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..persistence.models import Client
from ..services import Services
from . import grants
from .client_errors import audit_error_response
from .endpoints.introspection import IntrospectionEndpoint
from .endpoints.revocation import RevocationEndpoint
from .endpoints.token import basic_credentials


class PrivateKeyJwt(JWTBearerClientAssertion):
    """private_key_jwt (RFC 7523 §2.2): a JWT signed with a key from the client's JWKS,
    short-lived and used once: its ``jti`` is remembered until it expires."""

    CLIENT_AUTH_METHOD = "private_key_jwt"
    LEEWAY = 30
    # An assertion valid for longer is refused: its one-use marker must outlive it.
    MAX_LIFETIME = 300

    def __init__(self, ctx: Services) -> None:
        super().__init__(validate_jti=True, leeway=self.LEEWAY)
        self.ctx = ctx

    def get_audiences(self) -> list[str]:
        issuer = self.ctx.settings.issuer
        return [issuer, f"{issuer}/token"]

    def verify_claims(self, claims) -> None:
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now + self.LEEWAY:
            raise InvalidClientError(description="The assertion needs a valid 'iat'.")
        if isinstance(exp, int | float) and exp > now + self.MAX_LIFETIME + self.LEEWAY:
            raise InvalidClientError(
                description=f"The assertion may not be valid for more than "
                            f"{self.MAX_LIFETIME} seconds.")
        super().verify_claims(claims)

    def validate_jti(self, claims, jti) -> bool:
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            return False
        ttl = int(claims["exp"] - time.time()) + self.LEEWAY + 1
        return self.ctx.kv.set_if_absent(f"assertion:{claims['sub']}:{jti}", "1", max(ttl, 1))

    def resolve_client_public_key(self, client: Client):
        if client.token_endpoint_auth_method != self.CLIENT_AUTH_METHOD or not client.jwks:
            raise InvalidClientError(
                description="The client does not authenticate with private_key_jwt.")
        try:
            return KeySet.import_key_set(client.jwks)
        except (JoseError, ValueError, TypeError):
            raise InvalidClientError(description="The client's keys are unusable.") from None


class AuthorizationServer(FlaskAuthorizationServer):
    def __init__(self, ctx: Services) -> None:
        super().__init__()
        self.ctx = ctx
        self.scopes_supported = None

    def init(self, app) -> None:
        self.init_app(app)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJwt(self.ctx))
        self.register_grant(grants.AuthorizationCodeGrant,
                            [grants.S256CodeChallenge(required=True), grants.OpenIDCode()])
        self.register_grant(grants.RefreshTokenGrant)
        self.register_grant(grants.ClientCredentialsGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint)

    def query_client(self, client_id):
        if not isinstance(client_id, str) or not client_id or len(client_id) > 64 \
                or "\x00" in client_id:  # from a Basic header; see security/input_guard.py
            return None
        client = self.ctx.clients.get(self.ctx.db.session, client_id)
        # A client an administrator disabled is refused everywhere, as if unknown.
        return None if client is None or client.disabled else client

    def save_token(self, token, request):
        pass  # grants persist what they mint themselves

    def validate_requested_scope(self, scope):
        # Unknown scopes are ignored (OIDC Core §3.1.2.1), not errors; the client's
        # registration decides what is granted.
        return None

    def authenticate_client(self, request, methods, endpoint="token"):
        client = super().authenticate_client(request, methods, endpoint)
        if request.auth_method != "none":
            # Proved with a secret or a key: its failures are not its address's
            # (security/ratelimit.py, client failures).
            g.client_authenticated = True
        return client

    def create_oauth2_request(self, request):
        # A stored authorization request (resumed after login) is passed as is.
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def get_authorization_grant(self, request: OAuth2Request):
        # Authlib writes an unsupported response type into its error's description and
        # raises ValueError when the value holds a character no description may carry
        # (RFC 6749 §4.1.2.1): refuse it here with a fixed description, redirected only
        # to a redirect URI registered for the client, as Authlib would.
        response_type = request.payload.response_type or ""
        if not invalid_error_characters(response_type):
            return super().get_authorization_grant(request)
        raise UnsupportedResponseTypeError(
            response_type, description="The response type is not supported by the server.",
            redirect_uri=self.registered_redirect_uri(request))

    def registered_redirect_uri(self, request: OAuth2Request) -> str | None:
        client = self.query_client(request.payload.client_id)
        if client is None:
            return None
        requested = request.payload.redirect_uri
        if not requested:
            return client.get_default_redirect_uri()
        return requested if client.check_redirect_uri(requested) else None

    def handle_error_response(self, request, error):
        response = super().handle_error_response(request, error)
        if getattr(error, "error", None) == "invalid_client":
            # Always 401 with one Basic challenge: RFC 6749 §5.2 allows it (and requires
            # it when the client used Basic), RFC 7662 §2.3 asks it of introspection.
            response.status_code = 401
            response.headers["WWW-Authenticate"] = \
                'Basic realm="token", error="invalid_client"'
        audit_error_response(self.ctx, request, error, basic_client_id())
        return response


def basic_client_id() -> str | None:
    """The client id of the request's Basic header, if it has a well-formed one."""
    try:
        credentials = basic_credentials()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return credentials[0] if credentials else None

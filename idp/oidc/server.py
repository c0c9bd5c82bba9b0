"""The Authlib authorization server, composed from grant classes and endpoints.

One Flask ``AuthorizationServer`` answers every OAuth 2.0 endpoint, each a Flask view
(``idp.oidc.endpoints``): authorization, token, introspection and revocation; userinfo
is a resource protected by :mod:`idp.oidc.resource`.
"""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import UnsupportedResponseTypeError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import g
from joserfc.jwk import KeySet

from ..persistence.models import Client
from ..services import Services
from . import grants
from .endpoints.introspection import IntrospectionEndpoint
from .endpoints.revocation import RevocationEndpoint


class PrivateKeyJwt(JWTBearerClientAssertion):
    """private_key_jwt (RFC 7523 §2.2): a JWT signed with a key from the client's JWKS."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, ctx: Services) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.ctx = ctx

    def get_audiences(self) -> list[str]:
        issuer = self.ctx.settings.issuer
        return [issuer, f"{issuer}/token"]

    def validate_jti(self, claims, jti) -> bool:
        ttl = max(60, int(claims.get("exp", 0)) - int(claims.get("iat", 0)) + 60)
        return self.ctx.kv.set_if_absent(f"assertion:{claims['sub']}:{jti}", "1", min(ttl, 3600))

    def resolve_client_public_key(self, client: Client):
        return KeySet.import_key_set(client.jwks or {"keys": []})


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
        return self.ctx.clients.get(self.ctx.db.session, client_id)

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
        return response

"""The Authlib authorization servers, composed from grant classes and endpoints.

Two servers share one context and one client cache:

- :class:`AuthorizationServer` (Authlib's Flask server) answers the authorization
  endpoint, a browser page among others, inside Flask;
- :class:`ClientServer` (Authlib's framework-free server) answers the endpoints that a
  relying party's server calls with its client credentials (token, introspection,
  revocation). :mod:`idp.oidc.client_endpoints` serves them below Flask: they need no
  session, template, CSRF token or locale, and Flask's request machinery was most of
  their cost (docs/performance-history.md, sixth pass).
"""

from __future__ import annotations

from dataclasses import dataclass

from authlib.integrations.flask_oauth2 import AuthorizationServer as _FlaskServer
from authlib.oauth2 import AuthorizationServer as _PlainServer
from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import UnsupportedResponseTypeError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.jwk import KeySet

from ..config import Settings
from ..persistence.db import Database
from ..persistence.kv import KeyValueStore
from ..persistence.models import Client
from . import grants
from .client_cache import ClientCache
from .endpoints.introspection import IntrospectionEndpoint
from .endpoints.revocation import RevocationEndpoint
from .tokens import TokenService


@dataclass
class OidcContext:
    settings: Settings
    db: Database
    kv: KeyValueStore
    tokens: TokenService
    pairwise_salt: str


class PrivateKeyJwt(JWTBearerClientAssertion):
    """private_key_jwt (RFC 7523 §2.2): a JWT signed with a key from the client's JWKS."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, ctx: OidcContext) -> None:
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


class _ProviderHooks:
    """The hooks both servers fill in the same way."""

    ctx: OidcContext
    clients: ClientCache

    def _share(self, ctx: OidcContext, clients: ClientCache) -> None:
        self.ctx = ctx
        self.clients = clients
        self.scopes_supported = None

    def query_client(self, client_id):
        if not isinstance(client_id, str) or not client_id or len(client_id) > 64 \
                or "\x00" in client_id:  # from a Basic header; see security/input_guard.py
            return None
        return self.clients.get(self.ctx.db.session, client_id)

    def save_token(self, token, request):
        pass  # grants persist what they mint themselves

    def validate_requested_scope(self, scope):
        # Unknown scopes are ignored (OIDC Core §3.1.2.1), not errors; the client's
        # registration decides what is granted.
        return None


def _authorization_code_grant(ctx: OidcContext):
    return grants.AuthorizationCodeGrant, [grants.S256CodeChallenge(required=True),
                                           grants.OpenIDCode(ctx)]


class AuthorizationServer(_ProviderHooks, _FlaskServer):
    """The authorization endpoint (``/authorize``), in Flask."""

    def __init__(self, ctx: OidcContext, clients: ClientCache) -> None:
        super().__init__()
        self._share(ctx, clients)

    def init(self, app) -> None:
        self.init_app(app)
        self.register_grant(*_authorization_code_grant(self.ctx))

    def create_oauth2_request(self, request):
        # A stored authorization request (resumed after login) is passed as is.
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def get_authorization_grant(self, request: OAuth2Request):
        # Authlib writes an unsupported response type into its error's description, and
        # raises ValueError (a 500) when the value holds a character no
        # error_description may carry (RFC 6749 §4.1.2.1). No grant takes such a value:
        # refuse it here with a fixed description, redirected as Authlib would (only to
        # a redirect URI registered for the client).
        response_type = request.payload.response_type or ""
        if not invalid_error_characters(response_type):
            return super().get_authorization_grant(request)
        raise UnsupportedResponseTypeError(
            response_type, description="The response type is not supported by the server.",
            redirect_uri=self._registered_redirect_uri(request))

    def _registered_redirect_uri(self, request: OAuth2Request) -> str | None:
        client = self.query_client(request.payload.client_id)
        if client is None:
            return None
        requested = request.payload.redirect_uri
        if not requested:
            return client.get_default_redirect_uri()
        return requested if client.check_redirect_uri(requested) else None


class ClientServer(_ProviderHooks, _PlainServer):
    """The token, introspection and revocation endpoints, with no web framework: each
    call takes an :class:`OAuth2Request` and returns ``(status, payload, headers)``."""

    def __init__(self, ctx: OidcContext, clients: ClientCache) -> None:
        super().__init__()
        self._share(ctx, clients)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJwt(ctx))
        self.register_grant(*_authorization_code_grant(ctx))
        self.register_grant(grants.RefreshTokenGrant)
        self.register_grant(grants.ClientCredentialsGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint)

    def authenticate_client(self, request, methods, endpoint="token"):
        client = super().authenticate_client(request, methods, endpoint)
        if request.auth_method != "none":
            # Proved with a secret or a key: its failures are not its address's.
            request.client_authenticated = True
        return client

    def create_oauth2_request(self, request):
        return request  # built from the WSGI environ by the caller

    def send_signal(self, name, *args, **kwargs):
        pass  # nothing listens (Authlib's Flask server sends them as blinker signals)

    def handle_response(self, status_code, payload, headers):
        return status_code, payload, headers

    def handle_error_response(self, request, error):
        status, payload, headers = super().handle_error_response(request, error)
        if payload.get("error") == "invalid_client":
            # Always 401 with a Basic challenge: RFC 6749 §5.2 allows it (and requires it
            # when the client used Basic), RFC 7662 §2.3 asks it of introspection.
            # (Authlib's introspection and revocation add their own challenge: one only.)
            status = 401
            headers = [*[h for h in headers if h[0].lower() != "www-authenticate"],
                       ("WWW-Authenticate", 'Basic realm="token", error="invalid_client"')]
        return status, payload, headers

"""The Authlib authorization server, composed from grant classes and endpoints."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.integrations.flask_oauth2 import AuthorizationServer as _FlaskServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.jwk import KeySet

from ..config import Settings
from ..persistence.db import Database
from ..persistence.kv import KeyValueStore
from ..persistence.models import Client
from ..security.ratelimit import mark_client_authenticated
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


class AuthorizationServer(_FlaskServer):
    def __init__(self, ctx: OidcContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.scopes_supported = None
        self.clients = ClientCache(ctx.db, ctx.kv)

    def init(self, app) -> None:
        self.init_app(app)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJwt(self.ctx))
        self.register_grant(grants.AuthorizationCodeGrant,
                            [grants.S256CodeChallenge(required=True), grants.OpenIDCode(self.ctx)])
        self.register_grant(grants.RefreshTokenGrant)
        self.register_grant(grants.ClientCredentialsGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint)

    def query_client(self, client_id):
        if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
            return None
        return self.clients.get(self.ctx.db.session, client_id)

    def authenticate_client(self, request, methods, endpoint="token"):
        client = super().authenticate_client(request, methods, endpoint)
        if request.auth_method != "none":
            # Proved with a secret or a key: its failures are not its address's.
            mark_client_authenticated()
        return client

    def save_token(self, token, request):
        pass  # grants persist what they mint themselves

    def create_oauth2_request(self, request):
        # A stored authorization request (resumed after login) is passed as is.
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def validate_requested_scope(self, scope):
        # Unknown scopes are ignored (OIDC Core §3.1.2.1), not errors; the client's
        # registration decides what is granted.
        return None

"""Authlib grant classes and the token family (``Grant``) they mint into.

Each grant reads top to bottom through Authlib's steps: find the code or refresh token,
check it, consume it, mint, respond, in one ORM transaction committed with the tokens.
A failure after the consumption (a wrong redirect URI, a wrong PKCE verifier, a scope
beyond the family's) rolls the transaction back: nothing was issued and the code or
token is still its holder's.

- Authorization codes and refresh tokens are ``Consumable`` rows, consumed by one
  atomic ``UPDATE … RETURNING``. A code presented twice revokes the family minted by
  its first use; a rotated refresh token presented again revokes its whole family
  (reuse detection, as node-oidc-provider and Hydra do).
- Lifetimes are explicit: code ``tokens.authorization_code_ttl`` (60 s), access tokens
  minutes, refresh tokens with an idle and an absolute limit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode as AuthlibOpenIDCode
from sqlalchemy.orm import Session

from ..identity.grants import revoke_grant
from ..identity.subjects import remember as remember_subject
from ..identity.sso import add_client
from ..persistence import consumables
from ..persistence.consumables import Outcome
from ..persistence.models import Client, Grant, User, new_id, utcnow
from ..security.audit import record_event
from . import claims as claims_mod
from .tokens import live_grant_and_user

AUTH_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"

CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ALL_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]


@dataclass
class Consumed:
    """A code or refresh token just consumed, with its token family and user when both
    are still alive (``None`` otherwise: the family was revoked, the user disabled)."""

    item: consumables.Consumable
    grant: Grant | None
    user: User | None


def within_grace(item: consumables.Consumable, grace: int) -> bool:
    """Whether a consumed, unexpired token was consumed less than ``grace`` seconds ago:
    the same client asking twice at once (two tabs), not a stolen copy."""
    now = utcnow()
    return grace > 0 and item.revoked_at is None and item.expires_at > now \
        and item.consumed_at is not None \
        and item.consumed_at > now - dt.timedelta(seconds=grace)


def consume_or_revoke_family(session: Session, kind: str, value: str,
                             replay_reason: str, grace: int = 0) -> Consumed | None:
    """Consume a code or refresh token; on a second use, revoke its whole family (and
    commit that at once: the request fails, the revocation must stay), unless it comes
    back within ``grace`` seconds of the first."""
    result = consumables.consume_bearer(session, kind, value)
    if result.outcome is Outcome.REPLAYED and result.item is not None \
            and within_grace(result.item, grace):
        record_event(session, "token.reused_within_grace", user_id=result.item.user_id,
                     client_id=result.item.client_id)
        grant, user = live_grant_and_user(session, result.item.grant_id) or (None, None)
        return Consumed(result.item, grant, user)
    if result.outcome is Outcome.REPLAYED and result.item is not None:
        revoke_grant(session, result.item.grant_id, replay_reason)
        record_event(session, f"token.{replay_reason}", outcome="failure",
                     user_id=result.item.user_id, client_id=result.item.client_id)
        session.commit()
    if not result.ok:
        return None
    grant, user = live_grant_and_user(session, result.item.grant_id) or (None, None)
    return Consumed(result.item, grant, user)


def belongs_to(session: Session, consumed: Consumed, client: Client, reason: str) -> bool:
    """Whether the consumed artefact is ``client``'s. Another client holding it means it
    leaked: its family ends."""
    if consumed.item.client_id == client.client_id:
        return True
    revoke_grant(session, consumed.item.grant_id, reason)
    session.commit()
    return False


@dataclass
class AuthorizationCode:
    """The data behind an authorization code, as Authlib's grant expects it."""

    data: dict[str, Any]  # the authorization request's, as the code stored it
    grant: Grant | None
    user: User | None

    def get_redirect_uri(self) -> str:
        return self.data["redirect_uri"]

    def get_scope(self) -> str:
        return self.data["scope"]

    @property
    def code_challenge(self) -> str | None:
        return self.data.get("code_challenge")

    @property
    def code_challenge_method(self) -> str | None:
        return self.data.get("code_challenge_method")

    def get_nonce(self) -> str | None:
        return self.data.get("nonce")

    def get_auth_time(self) -> int:
        return self.data["auth_time"]


@dataclass
class RefreshToken:
    client_id: str
    grant: Grant | None
    user: User | None

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.grant.scope if self.grant else ""


class TokenMinting:
    """Shared by the user grants: mint access, refresh and ID tokens into a family."""

    request: Any
    server: Any

    @property
    def ctx(self):
        return self.server.ctx

    def mint(self, client: Client, user: User, grant: Grant, scope: str,
             with_refresh: bool, nonce: str | None = None) -> dict[str, Any]:
        ctx = self.ctx
        settings = ctx.settings.tokens
        session = ctx.db.session
        sub = claims_mod.subject_for(user.id, client, ctx.pairwise_salt)
        access_token, _ = ctx.tokens.mint_access_token(
            client_id=client.client_id, sub=sub, scope=scope,
            ttl=settings.access_token_ttl, grant_id=grant.id)
        token: dict[str, Any] = {"token_type": "Bearer", "access_token": access_token,
                                 "expires_in": settings.access_token_ttl, "scope": scope}
        if with_refresh:
            now = utcnow()
            # The earlier of the family's absolute limit and the idle limit.
            expires = min(grant.created_at + dt.timedelta(seconds=settings.refresh_token_ttl),
                          now + dt.timedelta(seconds=settings.refresh_token_idle_ttl))
            ttl = int((expires - now).total_seconds())
            if ttl > 0:
                token["refresh_token"] = consumables.issue_bearer(
                    session, REFRESH_TOKEN, ttl, user_id=user.id,
                    client_id=client.client_id, grant_id=grant.id)
        if "openid" in scope.split():
            id_claims = claims_mod.user_claims(
                user, claims_mod.claims_for(grant.scope, grant.claims_request, "id_token",
                                            grant.claims),
                session)
            token["id_token"] = ctx.tokens.mint_id_token(
                client, sub=sub, auth_time=grant.auth_time, nonce=nonce, acr=grant.acr,
                amr=grant.amr, sid=grant.sso_session_id, access_token=access_token,
                extra=id_claims)
        return token


def wants_refresh_token(client: Client, scope: str) -> bool:
    return client.check_grant_type(REFRESH_TOKEN) and "offline_access" in scope.split()


class AuthorizationCodeGrant(TokenMinting, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def generate_authorization_code(self) -> str:
        return consumables.new_bearer_value()

    @staticmethod
    def validate_authorization_redirect_uri(request, client: Client) -> str:
        # Authlib writes a refused URI into the error's description and raises
        # ValueError when it holds a character no description may carry (RFC 6749
        # §4.1.2.1): refuse it with a fixed description.
        uri = request.payload.redirect_uri
        if not uri:
            return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request,
                                                                                    client)
        if not client.check_redirect_uri(uri):
            raise InvalidRequestError("The redirect URI is not registered for this client.")
        return uri

    def save_authorization_code(self, code: str, request) -> None:
        """The family exists from the start, so that a replayed code can revoke it even
        while the first exchange is in flight. Committed by the authorization endpoint."""
        auth = request.auth_context  # set by the authorization endpoint
        client: Client = request.client
        session = self.ctx.db.session
        sso = auth["sso"]
        add_client(sso, client.client_id)
        family = Grant(id=new_id(), user_id=request.user.id, client_id=client.client_id,
                       scope=request.scope, sso_session_id=sso.id,
                       auth_time=auth["auth_time"], acr=sso.acr, amr=list(sso.amr),
                       claims_request=auth.get("claims"),
                       claims=list(auth.get("granted_claims", ())))
        session.add(family)
        payload = request.payload.data
        consumables.issue_bearer(
            session, AUTH_CODE, self.ctx.settings.tokens.authorization_code_ttl, value=code,
            user_id=request.user.id, client_id=client.client_id, grant_id=family.id,
            data={"redirect_uri": request.payload.redirect_uri, "scope": request.scope,
                  "nonce": payload.get("nonce"),
                  "code_challenge": payload.get("code_challenge"),
                  "code_challenge_method": payload.get("code_challenge_method"),
                  "auth_time": auth["auth_time"]})

    def query_authorization_code(self, code: str, client: Client):
        session = self.ctx.db.session
        # RFC 6749 §4.1.2: a code used twice revokes what its first use issued.
        consumed = consume_or_revoke_family(session, AUTH_CODE, code, "code_replayed")
        if consumed is None or not belongs_to(session, consumed, client, "code_wrong_client"):
            return None
        return AuthorizationCode(consumed.item.data, consumed.grant, consumed.user)

    def delete_authorization_code(self, authorization_code) -> None:
        pass  # consumed atomically in query_authorization_code

    def authenticate_user(self, authorization_code: AuthorizationCode):
        return authorization_code.user

    @hooked
    def create_token_response(self):
        client: Client = self.request.client
        code: AuthorizationCode = self.request.authorization_code
        grant, user = code.grant, code.user
        if grant is None or user is None:
            raise InvalidGrantError("The authorization is no longer valid.")
        self.request.user = user
        if client.subject_type == "pairwise":  # so that the hub can name the user back
            remember_subject(self.ctx.db.session, client.sector,
                             claims_mod.subject_for(user.id, client, self.ctx.pairwise_salt),
                             user.id)
        token = self.mint(client, user, grant, grant.scope,
                          wants_refresh_token(client, grant.scope), nonce=code.get_nonce())
        session = self.ctx.db.session
        record_event(session, "token.issued", user_id=user.id, client_id=client.client_id,
                     details={"grant_type": AUTH_CODE})
        session.commit()
        return 200, token, self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(TokenMinting, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, value: str):
        session = self.ctx.db.session
        # A rotated token that comes back means someone holds a copy: revoke the family.
        consumed = consume_or_revoke_family(
            session, REFRESH_TOKEN, value, "refresh_token_reused",
            grace=self.ctx.settings.tokens.refresh_token_reuse_grace)
        if consumed is None or not belongs_to(session, consumed, self.request.client,
                                              "refresh_token_wrong_client"):
            return None
        if consumed.grant is None or consumed.user is None:
            session.commit()  # keep it consumed: its family is gone anyway
            return None
        return RefreshToken(consumed.item.client_id, consumed.grant, consumed.user)

    def authenticate_user(self, refresh_token: RefreshToken):
        return refresh_token.user

    def revoke_old_credential(self, refresh_token) -> None:
        pass  # consumed atomically in authenticate_refresh_token

    @hooked
    def create_token_response(self):
        refresh: RefreshToken = self.request.refresh_token
        client: Client = self.request.client
        user = self.authenticate_user(refresh)
        scope = self.request.payload.scope or refresh.grant.scope
        self.request.user = user
        token = self.mint(client, user, refresh.grant, scope, with_refresh=True)
        self.ctx.db.session.commit()
        return 200, token, self.TOKEN_RESPONSE_HEADER


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    @hooked
    def create_token_response(self):
        ctx = self.server.ctx
        client: Client = self.request.client
        requested = (self.request.payload.scope or "").split()
        allowed = [s for s in client.scope.split() if s not in ("openid", "offline_access")]
        if any(s not in allowed for s in requested):
            raise InvalidScopeError()
        scope = " ".join(requested or allowed)
        ttl = ctx.settings.tokens.client_credentials_ttl
        access_token, _ = ctx.tokens.mint_access_token(
            client_id=client.client_id, sub=client.client_id, scope=scope, ttl=ttl)
        token = {"token_type": "Bearer", "access_token": access_token, "expires_in": ttl,
                 "scope": scope}
        return 200, token, self.TOKEN_RESPONSE_HEADER


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only (RFC 9700 §2.1.1): ``plain`` is refused."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]


class OpenIDCode(AuthlibOpenIDCode):
    """Nonce checks from Authlib; ID tokens are minted by ``TokenMinting`` and prompt
    handling is done by the authorization endpoint (it needs the SSO session)."""

    def __init__(self) -> None:
        super().__init__(require_nonce=False)

    def exists_nonce(self, nonce: str, request) -> bool:
        # The nonce binds the ID token to the client's session; checking its uniqueness
        # is the relying party's job (OIDC Core §15.5.2). An authorization request is
        # validated again when the user comes back from login, so no check here.
        return False

    def __call__(self, grant) -> None:
        grant.register_hook("after_validate_authorization_request_payload",
                            self.validate_openid_authorization_request)

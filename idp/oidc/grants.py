"""Authlib grant classes and the token family (``Grant``) they mint into.

- Authorization codes and refresh tokens are ``Consumable`` rows, consumed by one atomic
  update. A code presented twice revokes the grant minted by its first use; a rotated
  refresh token presented again revokes its whole family (reuse detection, as
  node-oidc-provider and Hydra do).
- Lifetimes are explicit: code ``tokens.authorization_code_ttl`` (60 s), access tokens
  minutes, refresh tokens with an idle and an absolute limit.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN, create_s256_code_challenge
from authlib.oidc.core.grants import OpenIDCode as _OpenIDCode
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..persistence import consumables
from ..persistence.consumables import Outcome
from ..persistence.inserts import execute_with_pending
from ..persistence.models import Client, Consumable, Grant, User, new_id, utcnow
from ..security.audit import record_event
from . import claims as claims_mod
from .tokens import consume_with_live_family, exchange_code, rotate_refresh_token

AUTH_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"

CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ALL_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]


# -- token families -------------------------------------------------------------
def revoke_grant(session: Session, grant_id: str | None, reason: str) -> bool:
    if not grant_id:
        return False
    now = utcnow()
    changed = session.execute(
        update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)).rowcount
    consumables.revoke_where(session, Consumable.grant_id == grant_id)
    return bool(changed)


def revoke_user_grants(session: Session, user_id: str, reason: str,
                       client_id: str | None = None) -> int:
    criteria = [Grant.user_id == user_id, Grant.revoked_at.is_(None)]
    if client_id:
        criteria.append(Grant.client_id == client_id)
    ids = list(session.scalars(Grant.__table__.select().with_only_columns(Grant.id)
                               .where(*criteria)))
    for grant_id in ids:
        revoke_grant(session, grant_id, reason)
    return len(ids)


@dataclass
class Consumed:
    """A code or refresh token just consumed, with its token family and user when both
    are still alive (``None`` otherwise: the family was revoked, the user disabled)."""

    item: Any  # the consumable's row, read-only
    grant: Grant | None
    user: User | None


def consume_or_revoke_family(session: Session, kind: str, value: str,
                             replay_reason: str) -> Consumed | None:
    """Consume a code or refresh token; on a second use, revoke its whole family."""
    result, family = consume_with_live_family(session, kind, value)
    if result.outcome is Outcome.REPLAYED and result.item is not None:
        revoke_grant(session, result.item.grant_id, replay_reason)
        record_event(session, f"token.{replay_reason}", outcome="failure",
                     user_id=result.item.user_id, client_id=result.item.client_id)
    if not result.ok:
        session.commit()
        return None
    grant, user = family or (None, None)
    return Consumed(result.item, grant, user)


@dataclass
class AuthorizationCode:
    """The data behind an authorization code, as Authlib's grant expects it."""

    data: dict[str, Any]  # the authorization request's, as the code stored it
    grant: Grant | None = None
    user: User | None = None
    # Exchanged in one statement: already consumed, its refresh token (if any) and its
    # audit row already stored.
    stored: bool = False
    refresh_token: str | None = None

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
    grant: Grant
    user: User
    successor: str | None = None  # set when rotated in one statement

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.grant.scope


class TokenMinting:
    """Shared by the grants: mint access/refresh (and ID) tokens into a grant."""

    request: Any
    server: Any

    @property
    def ctx(self):
        return self.server.ctx

    def mint(self, client: Client, user: User, grant: Grant, scope: str,
             with_refresh: bool, refresh_token: str | None = None) -> dict[str, Any]:
        """``refresh_token``: a successor already stored (the one-statement rotation)."""
        ctx = self.ctx
        ttl = ctx.settings.tokens.access_token_ttl
        sub = claims_mod.subject_for(user.id, client, ctx.pairwise_salt)
        access_token, _ = ctx.tokens.mint_access_token(
            client_id=client.client_id, sub=sub, scope=scope, ttl=ttl, grant_id=grant.id)
        token: dict[str, Any] = {"token_type": "Bearer", "access_token": access_token,
                                 "expires_in": ttl, "scope": scope}
        if refresh_token is not None:
            token["refresh_token"] = refresh_token
        elif with_refresh:
            absolute = grant.created_at + dt.timedelta(
                seconds=ctx.settings.tokens.refresh_token_ttl)
            idle = utcnow() + dt.timedelta(seconds=ctx.settings.tokens.refresh_token_idle_ttl)
            ttl_refresh = int((min(absolute, idle) - utcnow()).total_seconds())
            if ttl_refresh > 0:
                value = consumables.issue_bearer(
                    ctx.db.session, REFRESH_TOKEN, ttl_refresh, user_id=user.id,
                    client_id=client.client_id, grant_id=grant.id)
                token["refresh_token"] = value
        if "openid" in scope.split():
            id_claims = claims_mod.user_claims(
                user, claims_mod.claims_for(grant.scope, grant.claims_request, "id_token"),
                ctx.db.session)
            token["id_token"] = ctx.tokens.mint_id_token(
                client, sub=sub, auth_time=grant.auth_time, nonce=self.id_token_nonce(),
                acr=grant.acr, amr=grant.amr, sid=grant.sso_session_id,
                access_token=access_token, extra=id_claims)
        return token

    def id_token_nonce(self) -> str | None:
        return None


def wants_refresh_token(client: Client, scope: str) -> bool:
    return client.check_grant_type(REFRESH_TOKEN) and "offline_access" in scope.split()


# On the table (see consumables._INSERT_CONSUMABLE): its Python defaults still apply.
_INSERT_GRANT = insert(Grant.__table__)
# PostgreSQL: a new family and its code in one statement, the code's INSERT reading the
# family's id from a data-modifying CTE: one round trip instead of two, in the same
# transaction (docs/performance-history.md, fourteenth pass). Every column is given: a CTE's
# INSERT applies no Python default.
_GRANTS_C = Grant.__table__.c
_CODES_C = Consumable.__table__.c
_FAMILY_FIELDS = ("id", "user_id", "client_id", "scope", "sso_session_id", "auth_time",
                  "acr", "amr", "claims_request", "created_at")
_CODE_FIELDS = [name for name in consumables.BEARER_COLUMNS if name != "grant_id"]
_NEW_FAMILY = (
    insert(Grant.__table__)
    .values({name: bindparam(f"g_{name}", type_=_GRANTS_C[name].type)
             for name in _FAMILY_FIELDS})
    .returning(_GRANTS_C.id)
    .cte("family"))
_INSERT_FAMILY_AND_CODE = insert(Consumable.__table__).from_select(
    [*_CODE_FIELDS, "grant_id"],
    select(*(bindparam(f"c_{name}", type_=_CODES_C[name].type) for name in _CODE_FIELDS),
           _NEW_FAMILY.c.id),
    include_defaults=False)


class AuthorizationCodeGrant(TokenMinting, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def generate_authorization_code(self) -> str:
        # 256 random bits from one system call, as every other bearer value here;
        # Authlib's default draws its 48 characters one by one from SystemRandom, a
        # system call each.
        return consumables.new_bearer_value()

    @staticmethod
    def validate_authorization_redirect_uri(request, client: Client) -> str:
        # Authlib writes the refused URI into the error's description, and raises
        # ValueError (a 500) when it holds a character no error_description may carry
        # (RFC 6749 §4.1.2.1: no '"', '\\', control or non-ASCII character). The page
        # shows the user nothing of it anyway.
        uri = request.payload.redirect_uri
        if not uri:
            return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request,
                                                                                    client)
        if not client.check_redirect_uri(uri):
            raise InvalidRequestError("The redirect URI is not registered for this client.")
        return uri

    def save_authorization_code(self, code: str, request) -> None:
        ctx = self.ctx
        auth = request.auth_context  # set by the authorization endpoint
        client: Client = request.client
        data = {
            "redirect_uri": request.payload.redirect_uri,
            "scope": request.scope,
            "nonce": request.payload.data.get("nonce"),
            "code_challenge": request.payload.data.get("code_challenge"),
            "code_challenge_method": request.payload.data.get("code_challenge_method"),
            "auth_time": auth["auth_time"],
        }
        # The family exists from the start, so that a replayed code can revoke it
        # even while the first exchange is still in flight.
        # Plain INSERTs, not ORM objects: nothing here reads the rows back (the code
        # exchange loads the family afresh); see consumables.issue_bearer.
        session = ctx.db.session
        family = {
            "id": new_id(), "user_id": request.user.id, "client_id": client.client_id,
            "scope": request.scope, "sso_session_id": auth["sid"],
            "auth_time": auth["auth_time"], "acr": auth["acr"], "amr": auth["amr"],
            "claims_request": auth.get("claims")}
        ttl = ctx.settings.tokens.authorization_code_ttl
        if ctx.db.is_sqlite:
            session.execute(_INSERT_GRANT, family)
            consumables.issue_bearer(session, AUTH_CODE, ttl, value=code,
                                     user_id=request.user.id, client_id=client.client_id,
                                     grant_id=family["id"], data=data)
        else:
            now = utcnow()
            row = consumables.bearer_row(AUTH_CODE, ttl, code, now=now, id=new_id(),
                                         user_id=request.user.id,
                                         client_id=client.client_id, data=data,
                                         attempts=0, created_at=now)
            # With what the transaction has pending (the login's audit event and SSO
            # session): one statement for all (persistence.inserts).
            execute_with_pending(session, _INSERT_FAMILY_AND_CODE, {
                **{f"g_{name}": value for name, value in family.items()}, "g_created_at": now,
                **{f"c_{name}": row[name] for name in _CODE_FIELDS}})
        # Committed by the authorization endpoint, or by the sign-in it answers in place
        # (idp/flows/continuation.py): one commit either way.

    def query_authorization_code(self, code: str, client: Client):
        exchanged = self._exchange_in_one_statement(code, client)
        if exchanged is not None:
            return exchanged
        session = self.ctx.db.session
        # RFC 6749 §4.1.2: a code used twice revokes what its first use issued.
        consumed = consume_or_revoke_family(session, AUTH_CODE, code, "code_replayed")
        if consumed is None:
            return None
        if consumed.item.client_id != client.client_id:
            revoke_grant(session, consumed.item.grant_id, "code_wrong_client")
            session.commit()
            return None
        # Committed with the tokens it yields: if the exchange fails later (PKCE,
        # redirect_uri), nothing was issued and the code is still the client's. A
        # concurrent second use waits on the row lock, then finds it consumed.
        return AuthorizationCode(consumed.item.data, consumed.grant, consumed.user)

    def _exchange_in_one_statement(self, code: str, client: Client
                                   ) -> AuthorizationCode | None:
        """PostgreSQL, the common case: the exchange in one statement, taken only when the
        checks Authlib makes after this call (redirect URI, PKCE) will pass; any other
        case goes the general way (``tokens.exchange_code``)."""
        ctx = self.ctx
        redirect_uri = self.request.payload.redirect_uri
        verifier = self.request.form.get("code_verifier")
        if ctx.db.is_sqlite or not isinstance(redirect_uri, str) \
                or not isinstance(verifier, str) or not CODE_VERIFIER_PATTERN.match(verifier):
            return None
        tokens = ctx.settings.tokens
        with ctx.db.single_statement() as connection:
            exchange = exchange_code(
                connection, AUTH_CODE, code, client_id=client.client_id,
                redirect_uri=redirect_uri, code_challenge=create_s256_code_challenge(verifier),
                with_refresh=client.check_grant_type(REFRESH_TOKEN),
                absolute_ttl=tokens.refresh_token_ttl, idle_ttl=tokens.refresh_token_idle_ttl)
        if exchange is None:
            return None
        return AuthorizationCode(exchange.data, exchange.grant, exchange.user, stored=True,
                                 refresh_token=exchange.refresh_token)

    def delete_authorization_code(self, authorization_code) -> None:
        pass  # consumed atomically in query_authorization_code

    def authenticate_user(self, authorization_code: AuthorizationCode):
        return authorization_code.user

    def id_token_nonce(self) -> str | None:
        return self.request.authorization_code.get_nonce()

    @hooked
    def create_token_response(self):
        session = self.ctx.db.session
        client: Client = self.request.client
        code: AuthorizationCode = self.request.authorization_code
        # Read with the code's consumption, in its transaction.
        grant, user = code.grant, code.user
        if grant is None or user is None:
            raise InvalidGrantError("The authorization is no longer valid.")
        self.request.user = user
        if code.stored:  # exchanged in one statement: nothing left to write
            token = self.mint(client, user, grant, grant.scope, with_refresh=False,
                              refresh_token=code.refresh_token)
            return 200, token, self.TOKEN_RESPONSE_HEADER
        token = self.mint(client, user, grant, grant.scope,
                          wants_refresh_token(client, grant.scope))
        record_event(session, "token.issued", user_id=user.id, client_id=client.client_id,
                     details={"grant_type": AUTH_CODE})
        session.commit()
        return 200, token, self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(TokenMinting, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, value: str):
        ctx = self.ctx
        if not ctx.db.is_sqlite:
            # The common case in one statement; any other goes the general way below.
            tokens = ctx.settings.tokens
            with ctx.db.single_statement() as connection:
                rotation = rotate_refresh_token(
                    connection, REFRESH_TOKEN, value,
                    client_id=self.request.client.client_id,
                    scopes=(self.request.payload.scope or "").split(),
                    absolute_ttl=tokens.refresh_token_ttl, idle_ttl=tokens.refresh_token_idle_ttl)
            if rotation is not None:
                return RefreshToken(self.request.client.client_id, rotation.grant,
                                    rotation.user, rotation.successor)
        session = ctx.db.session
        # A rotated token that comes back means someone holds a copy: revoke the family.
        consumed = consume_or_revoke_family(session, REFRESH_TOKEN, value,
                                            "refresh_token_reused")
        if consumed is None:
            return None
        if consumed.item.client_id != self.request.client.client_id:
            # Another client holds this client's token: it leaked, end the family.
            revoke_grant(session, consumed.item.grant_id, "refresh_token_wrong_client")
            session.commit()
            return None
        # Consumed in the transaction that issues its successor (see the code grant).
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
        user = self.authenticate_user(refresh)
        if user is None:
            raise InvalidGrantError()
        client: Client = self.request.client
        scope = self.request.payload.scope or refresh.grant.scope
        self.request.user = user
        token = self.mint(client, user, refresh.grant, scope, with_refresh=True,
                          refresh_token=refresh.successor)
        if refresh.successor is None:  # rotated in one statement: nothing else to commit
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


class OpenIDCode(_OpenIDCode):
    """Nonce checks from Authlib; ID tokens are minted by ``TokenMinting`` and prompt
    handling is done by the authorization endpoint (it needs the SSO session)."""

    def __init__(self, ctx) -> None:
        super().__init__(require_nonce=False)
        self.ctx = ctx

    def exists_nonce(self, nonce: str, request) -> bool:
        # The nonce binds the ID token to the client's session; checking its uniqueness
        # is the relying party's job (OIDC Core §15.5.2). An authorization request is
        # validated again when the user comes back from login, so no check here.
        return False

    def __call__(self, grant) -> None:
        grant.register_hook("after_validate_authorization_request_payload",
                            self.validate_openid_authorization_request)


def now_ts() -> int:
    return int(time.time())

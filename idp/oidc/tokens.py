"""Minting and checking tokens.

Access tokens are JWTs (RFC 9068, ``typ: at+jwt``) signed with the newest key, each with
a random ``jti`` (two tokens minted in the same second for the same user and client must
differ). A user token carries ``gid``, the grant (token family) it belongs to: revoking
the grant deactivates the whole family.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import (JSON, Boolean, Interval, Text, and_, bindparam, exists, func, insert,
                        literal, select, true, type_coerce, update)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..config import Settings
from ..persistence import consumables
from ..persistence.models import Client, Consumable, Grant, RevokedAccessToken, User, new_id
from ..security import audit
from . import jws
from .keys import KeyStore

ACCESS_TOKEN_TYP = "at+jwt"


def half_hash(value: str) -> str:
    """at_hash / c_hash for RS256 and ES256 (both SHA-256)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


class TokenService:
    def __init__(self, settings: Settings, keys: KeyStore) -> None:
        self.settings = settings
        self.keys = keys
        self.issuer = settings.issuer
        self.algorithms = list(settings.tokens.signing_algs)

    def _sign(self, claims: dict[str, Any], alg: str, typ: str = "JWT") -> str:
        key = self.keys.signing_key(alg)
        return jws.sign_compact({"alg": alg, "kid": key.kid, "typ": typ}, claims,
                                key.key.private_key)

    # -- access tokens ----------------------------------------------------------
    def mint_access_token(self, *, client_id: str, sub: str, scope: str, ttl: int,
                          grant_id: str | None = None) -> tuple[str, dict[str, Any]]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": sub, "aud": client_id, "client_id": client_id,
            "iat": now, "exp": now + ttl, "jti": secrets.token_urlsafe(16), "scope": scope,
        }
        if grant_id:
            claims["gid"] = grant_id
        return self._sign(claims, self.settings.tokens.access_token_alg, ACCESS_TOKEN_TYP), claims

    def decode_access_token(self, token: str) -> dict[str, Any] | None:
        """Claims of a well-signed, unexpired access token of ours; None otherwise."""
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 4096:
            return None
        try:
            decoded = jwt.decode(token, self.keys.keyset, algorithms=self.algorithms)
        except (JoseError, ValueError, TypeError):
            return None
        # typ check: an ID token must never be accepted as an access token.
        if decoded.header.get("typ") != ACCESS_TOKEN_TYP:
            return None
        claims = decoded.claims
        if claims.get("iss") != self.issuer or not isinstance(claims.get("exp"), int) \
                or claims["exp"] <= time.time():
            return None
        return dict(claims)

    def is_access_token_active(self, connection: Connection, claims: dict[str, Any]) -> bool:
        """Not revoked; for a user token, its family and its user still alive too (the
        same test as userinfo's). One query, on a connection in autocommit
        (``Database.single_statement``)."""
        jti = claims.get("jti", "")
        if claims.get("gid") is None:
            return bool(connection.scalar(_CLIENT_TOKEN_UNREVOKED, {"jti": jti}))
        return connection.scalar(_LIVE_FAMILY_ID, {"grant_id": claims["gid"],
                                                   "jti": jti}) is not None

    def active_grant_and_user(self, connection: Connection, claims: dict[str, Any]
                              ) -> tuple[Any, Any] | None:
        """The grant and user behind a user access token that is still active, as
        read-only views of their columns, in one query; None for a revoked token, a dead
        family, a disabled user or a client token."""
        gid = claims.get("gid")
        if gid is None:
            return None
        row = connection.execute(_LIVE_FAMILY_AND_USER,
                                 {"grant_id": gid, "jti": claims.get("jti", "")}).first()
        return None if row is None else _split_family_and_user(row)

    # -- ID tokens --------------------------------------------------------------
    def id_token_alg(self, client: Client) -> str:
        return client.id_token_signed_response_alg or self.settings.tokens.id_token_alg

    def mint_id_token(self, client: Client, *, sub: str, auth_time: int, nonce: str | None,
                      acr: str | None, amr: list[str] | None, sid: str | None,
                      access_token: str | None, extra: dict[str, Any] | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": sub, "aud": client.client_id, "azp": client.client_id,
            "iat": now, "exp": now + self.settings.tokens.id_token_ttl,
            "auth_time": auth_time, "jti": secrets.token_urlsafe(12),
        }
        if nonce:
            claims["nonce"] = nonce
        if acr:
            claims["acr"] = acr
        if amr:
            claims["amr"] = amr
        if sid:
            claims["sid"] = sid
        if access_token:
            claims["at_hash"] = half_hash(access_token)
        if extra:
            claims.update({k: v for k, v in extra.items() if k not in claims})
        return self._sign(claims, self.id_token_alg(client))

    def decode_id_token_hint(self, token: str) -> dict[str, Any] | None:
        """An ID token we issued, even expired (id_token_hint, logout)."""
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
            return None
        try:
            decoded = jwt.decode(token, self.keys.keyset, algorithms=self.algorithms)
        except (JoseError, ValueError, TypeError):
            return None
        if decoded.header.get("typ") == ACCESS_TOKEN_TYP:
            return None
        claims = dict(decoded.claims)
        if claims.get("iss") != self.issuer or not claims.get("sub") or not claims.get("aud"):
            return None
        return claims


# Built once (every refresh, code exchange, userinfo and introspection runs one of these):
# building a statement and its cache key costs about a third of running it.
# A family not revoked, of a user still enabled: the ORM query below and the
# autocommit reads of userinfo and introspection (_LIVE_FAMILY_OF_TOKEN).
_LIVE_FAMILY = (Grant.__table__.c.id == bindparam("grant_id"),
                Grant.__table__.c.revoked_at.is_(None), User.__table__.c.disabled.is_(False))
_LIVE_GRANT_AND_USER = select(Grant, User).join(User, User.id == Grant.user_id).where(
    *_LIVE_FAMILY)
_UNREVOKED_JTI = ~exists().where(RevokedAccessToken.jti == bindparam("jti"))
_CLIENT_TOKEN_UNREVOKED = select(_UNREVOKED_JTI)


# PostgreSQL: consume a code or refresh token and read its family and user in one
# statement (a data-modifying CTE; SQLite has none). The family and user come back as
# None when either is no longer alive; the artefact is consumed all the same.
_CONSUMED = consumables.CONSUME_BEARER.cte("consumed")
_CONSUME_WITH_LIVE_FAMILY = (
    select(_CONSUMED, Grant, User).select_from(_CONSUMED)
    .outerjoin(Grant, and_(Grant.id == _CONSUMED.c.grant_id, Grant.revoked_at.is_(None)))
    .outerjoin(User, and_(User.id == Grant.user_id, User.disabled.is_(False))))


def consume_with_live_family(session: Session, kind: str, value: str
                             ) -> tuple[consumables.ConsumeResult, tuple[Grant, User] | None]:
    """Consume a code or refresh token (``consumables.consume_bearer``) and, once
    consumed, read its token family and user if both are still alive: one statement on
    PostgreSQL, two elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        result = consumables.consume_bearer(session, kind, value)
        return result, (live_grant_and_user(session, result.item.grant_id)
                        if result.ok else None)
    result = consumables.consume_bearer(session, kind, value,
                                        statement=_CONSUME_WITH_LIVE_FAMILY)
    if not result.ok:
        return result, None
    grant, user = result.item.Grant, result.item.User
    return result, (None if grant is None or user is None else (grant, user))


# PostgreSQL: the two grants that consume a bearer artefact of a user's token family (a
# refresh token's rotation, a code's exchange) run in one statement each, outside any
# transaction block (a single statement is atomic by itself). The statement changes
# nothing unless every check the grant makes passes; on any other case it returns no row
# and the caller takes the general path, which gives every failure its own answer (a
# replay revokes the family, and so on). One round trip instead of four or five (BEGIN,
# consume, the writes, COMMIT): docs/performance-history.md, thirteenth and fourteenth passes.
_CONSUMABLES = Consumable.__table__
_GRANTS = Grant.__table__
_USERS = User.__table__
_SCOPES = type_coerce(func.string_to_array(_GRANTS.c.scope, " "), ARRAY(Text))
# A refresh token issued now expires at the family's absolute limit or after the idle
# lifetime, whichever comes first (as TokenMinting.mint computes it).
_SUCCESSOR_EXPIRES = func.least(
    _GRANTS.c.created_at + bindparam("p_absolute_ttl", type_=Interval),
    bindparam("p_idle_deadline", type_=_CONSUMABLES.c.expires_at.type))


def _consume_in_live_family(name: str, *conditions, returning=()):
    """A CTE consuming the live artefact ``p_lookup`` of client ``p_client_id`` only if its
    family is alive, its user enabled, a refresh token issued now would live at least a
    second (the general path's test), and ``conditions`` hold."""
    return (
        update(_CONSUMABLES)
        .where(_CONSUMABLES.c.kind == bindparam("p_kind"),
               _CONSUMABLES.c.lookup == bindparam("p_lookup"),
               _CONSUMABLES.c.consumed_at.is_(None), _CONSUMABLES.c.revoked_at.is_(None),
               _CONSUMABLES.c.expires_at > bindparam("p_now"),
               _CONSUMABLES.c.client_id == bindparam("p_client_id"),
               _GRANTS.c.id == _CONSUMABLES.c.grant_id, _GRANTS.c.revoked_at.is_(None),
               _GRANTS.c.created_at > bindparam("p_created_after"),
               _USERS.c.id == _GRANTS.c.user_id, _USERS.c.disabled.is_(False),
               *conditions)
        .values(consumed_at=bindparam("p_now"))
        .returning(_CONSUMABLES.c.user_id, _CONSUMABLES.c.client_id, _CONSUMABLES.c.grant_id,
                   _SUCCESSOR_EXPIRES.label("successor_expires_at"), *returning)
        .cte(name))


def _insert_refresh_token(consumed, name: str, *conditions):
    """A CTE inserting a refresh token (``s_id``, ``s_lookup``) into ``consumed``'s family,
    when ``conditions`` hold."""
    return (
        insert(_CONSUMABLES)
        .from_select(
            consumables.BEARER_COLUMNS,
            select(bindparam("s_id", type_=Text), literal("refresh_token", Text),
                   bindparam("s_lookup", type_=Text), consumed.c.user_id,
                   consumed.c.client_id, consumed.c.grant_id,
                   literal({}, JSON), literal(0),
                   bindparam("p_now", type_=_CONSUMABLES.c.created_at.type),
                   consumed.c.successor_expires_at).select_from(consumed).where(*conditions),
            include_defaults=False)
        .returning(_CONSUMABLES.c.id)
        .cte(name))


# The family and user come back as plain rows (read-only, attributes named as the models'):
# no ORM session or identity map for a statement that needs neither.
_GRANT_ATTRS = [(a.key, a.columns[0]) for a in sa_inspect(Grant).column_attrs]
_USER_ATTRS = [(a.key, a.columns[0]) for a in sa_inspect(User).column_attrs]
_GRANT_NAMES = [name for name, _ in _GRANT_ATTRS]
_USER_NAMES = [name for name, _ in _USER_ATTRS]
# In this order, as _split_family_and_user reads them back.
_FAMILY_AND_USER_COLUMNS = [*(c for _, c in _GRANT_ATTRS), *(c for _, c in _USER_ATTRS)]


# A user access token's family and user, read in autocommit as plain rows (userinfo,
# introspection): an ORM session's execute and its loading of two entities were about
# half of a userinfo request's CPU (docs/performance-history.md, fourteenth pass).
_LIVE_FAMILY_OF_TOKEN = (*_LIVE_FAMILY, _UNREVOKED_JTI)
_FAMILY_JOIN_USER = _GRANTS.join(_USERS, _USERS.c.id == _GRANTS.c.user_id)
_LIVE_FAMILY_AND_USER = (
    select(*_FAMILY_AND_USER_COLUMNS)
    .select_from(_FAMILY_JOIN_USER).where(*_LIVE_FAMILY_OF_TOKEN))
_LIVE_FAMILY_ID = select(_GRANTS.c.id).select_from(_FAMILY_JOIN_USER).where(
    *_LIVE_FAMILY_OF_TOKEN)


def _family_and_user(consumed, *more):
    return (select(*_FAMILY_AND_USER_COLUMNS, *more)
            .select_from(consumed)
            .join(_GRANTS, _GRANTS.c.id == consumed.c.grant_id)
            .join(_USERS, _USERS.c.id == _GRANTS.c.user_id))


# The rotation: consumed only if the requested scopes are within the family's; its
# successor always inserted.
_ROTATED = _consume_in_live_family(
    "rotated", _SCOPES.contains(bindparam("p_scopes", type_=ARRAY(Text))))
_SUCCESSOR = _insert_refresh_token(_ROTATED, "successor")
_ROTATE_REFRESH_TOKEN = _family_and_user(_ROTATED).join(
    _SUCCESSOR, _SUCCESSOR.c.id == bindparam("s_id", type_=Text))

# The code exchange: consumed only if the redirect URI is the authorization request's and
# the PKCE challenge (S256) is the verifier's; a refresh token inserted when the client
# may refresh and the family's scope holds offline_access; the audit row inserted.
_CODE_DATA = _CONSUMABLES.c.data
_EXCHANGED = _consume_in_live_family(
    "exchanged",
    _CODE_DATA["redirect_uri"].as_string() == bindparam("p_redirect_uri", type_=Text),
    _CODE_DATA["code_challenge"].as_string() == bindparam("p_code_challenge", type_=Text),
    func.coalesce(_CODE_DATA["code_challenge_method"].as_string(), "S256") == "S256",
    returning=(_CODE_DATA, _SCOPES.contains(literal(["offline_access"], ARRAY(Text)))
               .label("offline_access")))
_EXCHANGE_REFRESH = _insert_refresh_token(
    _EXCHANGED, "refresh", bindparam("p_with_refresh", type_=Boolean),
    _EXCHANGED.c.offline_access)
_EXCHANGE_AUDITED = audit.event_insert_from(
    _EXCHANGED, "audited", "token.issued", details={"grant_type": "authorization_code"})
_EXCHANGE_CODE = (
    _family_and_user(_EXCHANGED, _EXCHANGED.c.data, _EXCHANGE_REFRESH.c.id)
    .outerjoin(_EXCHANGE_REFRESH, true())
    .add_cte(_EXCHANGE_AUDITED))


class _Columns:
    """A read-only view of a model's columns from a row (``Rotation.grant``, ``.user``)."""

    def __init__(self, names: list[str], values) -> None:
        self.__dict__.update(zip(names, values))


class _UserColumns(_Columns):
    name = User.name  # the model's derived attribute, computed from columns only


def _split_family_and_user(row) -> tuple[_Columns, _UserColumns]:
    grant_end = len(_GRANT_NAMES)
    user_end = grant_end + len(_USER_NAMES)
    return (_Columns(_GRANT_NAMES, row[:grant_end]),
            _UserColumns(_USER_NAMES, row[grant_end:user_end]))


def _one_statement_params(kind: str, value: str, client_id: str, absolute_ttl: int,
                          idle_ttl: int, successor: str) -> dict[str, Any]:
    now = consumables.utcnow()
    return {
        "p_kind": kind, "p_lookup": consumables.token_digest(value), "p_now": now,
        "p_client_id": client_id,
        "p_absolute_ttl": dt.timedelta(seconds=absolute_ttl),
        "p_created_after": now - dt.timedelta(seconds=absolute_ttl - 1),
        "p_idle_deadline": now + dt.timedelta(seconds=idle_ttl),
        "s_id": new_id(), "s_lookup": consumables.token_digest(successor)}


@dataclass
class Rotation:
    """A refresh token rotated in one statement: its family, user and successor."""

    grant: Any  # Grant's columns, read-only
    user: Any  # User's columns, read-only
    successor: str  # the new refresh token's clear value (never stored)


def rotate_refresh_token(connection: Connection, kind: str, value: str, *, client_id: str,
                         scopes: list[str], absolute_ttl: int, idle_ttl: int
                         ) -> Rotation | None:
    """PostgreSQL only (``connection`` in autocommit: ``Database.single_statement``):
    rotate a refresh token when every check passes; None, with nothing changed,
    otherwise."""
    if not consumables.is_plausible_bearer(value):
        return None
    successor = consumables.new_bearer_value()
    row = connection.execute(_ROTATE_REFRESH_TOKEN, {
        **_one_statement_params(kind, value, client_id, absolute_ttl, idle_ttl, successor),
        "p_scopes": scopes}).first()
    if row is None:
        return None
    return Rotation(*_split_family_and_user(row), successor)


@dataclass
class CodeExchange:
    """An authorization code exchanged in one statement: consumed, its refresh token (if
    any) stored, its audit row written."""

    grant: Any  # Grant's columns, read-only
    user: Any  # User's columns, read-only
    data: dict[str, Any]  # the authorization request's, as the code stored it
    refresh_token: str | None  # the new refresh token's clear value (never stored)


def exchange_code(connection: Connection, kind: str, value: str, *, client_id: str,
                  redirect_uri: str, code_challenge: str, with_refresh: bool,
                  absolute_ttl: int, idle_ttl: int) -> CodeExchange | None:
    """PostgreSQL only (``connection`` in autocommit): exchange an authorization code whose
    request had this ``redirect_uri`` and S256 ``code_challenge`` (the verifier's, computed
    by the caller) when every check passes; None, with nothing changed, otherwise."""
    if not consumables.is_plausible_bearer(value):
        return None
    refresh_token = consumables.new_bearer_value()
    row = connection.execute(_EXCHANGE_CODE, {
        **_one_statement_params(kind, value, client_id, absolute_ttl, idle_ttl, refresh_token),
        "p_redirect_uri": redirect_uri, "p_code_challenge": code_challenge,
        "p_with_refresh": with_refresh, "a_id": new_id()}).first()
    if row is None:
        return None
    grant, user = _split_family_and_user(row)
    data, refresh_id = row[-2], row[-1]
    return CodeExchange(grant, user, data, refresh_token if refresh_id is not None else None)


def live_grant_and_user(session: Session, grant_id: str | None
                        ) -> tuple[Grant, User] | None:
    """A token family that is not revoked and its still enabled user, in one query."""
    if not grant_id:
        return None
    row = session.execute(_LIVE_GRANT_AND_USER, {"grant_id": grant_id}).first()
    return None if row is None else (row[0], row[1])


def revoke_access_token(session: Session, claims: dict[str, Any]) -> None:
    import datetime as dt

    jti = claims.get("jti")
    if jti and session.get(RevokedAccessToken, jti) is None:
        session.add(RevokedAccessToken(
            jti=jti, expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc)))


def active_grant_ids(session: Session, user_id: str) -> list[str]:
    return list(session.scalars(select(Grant.id).where(Grant.user_id == user_id,
                                                       Grant.revoked_at.is_(None))))

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
from sqlalchemy import (JSON, Interval, Text, and_, bindparam, exists, func, insert, literal,
                        select, type_coerce, update)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..config import Settings
from ..persistence import consumables
from ..persistence.models import Client, Consumable, Grant, RevokedAccessToken, User, new_id
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

    def is_access_token_active(self, session: Session, claims: dict[str, Any]) -> bool:
        """Not revoked; for a user token, its family and its user still alive too (the
        same test as userinfo's). One query."""
        if claims.get("gid") is None:
            return bool(session.scalar(_CLIENT_TOKEN_UNREVOKED,
                                       {"jti": claims.get("jti", "")}))
        return self.active_grant_and_user(session, claims) is not None

    def active_grant_and_user(self, session: Session, claims: dict[str, Any]
                              ) -> tuple[Grant, User] | None:
        """The grant and user behind a user access token that is still active, in one
        query; None for a revoked token, a dead family, a disabled user or a client
        token."""
        gid = claims.get("gid")
        if gid is None:
            return None
        return live_grant_and_user(session, gid, unrevoked_jti=claims.get("jti", ""))

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
_LIVE_GRANT_AND_USER = select(Grant, User).join(User, User.id == Grant.user_id).where(
    Grant.id == bindparam("grant_id"), Grant.revoked_at.is_(None), User.disabled.is_(False))
_LIVE_GRANT_AND_USER_UNREVOKED_JTI = _LIVE_GRANT_AND_USER.where(
    ~exists().where(RevokedAccessToken.jti == bindparam("jti")))
_CLIENT_TOKEN_UNREVOKED = select(~exists().where(RevokedAccessToken.jti == bindparam("jti")))


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


# PostgreSQL: a refresh token's whole rotation in one statement, outside any transaction
# block (a single statement is atomic by itself): consume the token, read its family and
# user, insert its successor. It changes nothing unless every check the grant makes
# passes: the token is live and this client's, its family alive, its user enabled, the
# requested scopes within the family's, the family's absolute lifetime not reached. On
# any other case it returns no row and the caller takes the general path, which gives
# every failure its own answer (a replay revokes the family, and so on). One round trip
# instead of four (BEGIN, consume, successor, COMMIT): docs/performance.md, thirteenth
# pass.
_CONSUMABLES = Consumable.__table__
_GRANTS = Grant.__table__
_USERS = User.__table__
_SUCCESSOR_EXPIRES = func.least(
    _GRANTS.c.created_at + bindparam("p_absolute_ttl", type_=Interval),
    bindparam("p_idle_deadline", type_=_CONSUMABLES.c.expires_at.type))
_ROTATED = (
    update(_CONSUMABLES)
    .where(_CONSUMABLES.c.kind == bindparam("p_kind"),
           _CONSUMABLES.c.lookup == bindparam("p_lookup"),
           _CONSUMABLES.c.consumed_at.is_(None), _CONSUMABLES.c.revoked_at.is_(None),
           _CONSUMABLES.c.expires_at > bindparam("p_now"),
           _CONSUMABLES.c.client_id == bindparam("p_client_id"),
           _GRANTS.c.id == _CONSUMABLES.c.grant_id, _GRANTS.c.revoked_at.is_(None),
           # The successor would live at least a second (the general path's test).
           _GRANTS.c.created_at > bindparam("p_created_after"),
           type_coerce(func.string_to_array(_GRANTS.c.scope, " "), ARRAY(Text)).contains(
               bindparam("p_scopes", type_=ARRAY(Text))),
           _USERS.c.id == _GRANTS.c.user_id, _USERS.c.disabled.is_(False))
    .values(consumed_at=bindparam("p_now"))
    .returning(_CONSUMABLES.c.user_id, _CONSUMABLES.c.client_id, _CONSUMABLES.c.grant_id,
               _SUCCESSOR_EXPIRES.label("successor_expires_at"))
    .cte("rotated"))
_SUCCESSOR = (
    insert(_CONSUMABLES)
    .from_select(
        ["id", "kind", "lookup", "user_id", "client_id", "grant_id", "data", "attempts",
         "created_at", "expires_at"],
        select(bindparam("s_id", type_=Text), bindparam("p_kind", type_=Text),
               bindparam("s_lookup", type_=Text), _ROTATED.c.user_id,
               _ROTATED.c.client_id, _ROTATED.c.grant_id,
               literal({}, JSON), literal(0),
               bindparam("p_now", type_=_CONSUMABLES.c.created_at.type),
               _ROTATED.c.successor_expires_at).select_from(_ROTATED),
        include_defaults=False)
    .returning(_CONSUMABLES.c.id)
    .cte("successor"))
# The family and user come back as plain rows (read-only, attributes named as the models'):
# no ORM session or identity map for a statement that needs neither.
_GRANT_ATTRS = [(a.key, a.columns[0]) for a in sa_inspect(Grant).column_attrs]
_USER_ATTRS = [(a.key, a.columns[0]) for a in sa_inspect(User).column_attrs]
_GRANT_NAMES = [name for name, _ in _GRANT_ATTRS]
_USER_NAMES = [name for name, _ in _USER_ATTRS]
_ROTATE_REFRESH_TOKEN = (
    select(*(c for _, c in _GRANT_ATTRS), *(c for _, c in _USER_ATTRS))
    .select_from(_ROTATED)
    .join(_GRANTS, _GRANTS.c.id == _ROTATED.c.grant_id)
    .join(_USERS, _USERS.c.id == _GRANTS.c.user_id)
    .join(_SUCCESSOR, _SUCCESSOR.c.id == bindparam("s_id", type_=Text)))


class _Columns:
    """A read-only view of a model's columns from a row (``Rotation.grant``, ``.user``)."""

    def __init__(self, names: list[str], values) -> None:
        self.__dict__.update(zip(names, values))


class _UserColumns(_Columns):
    name = User.name  # the model's derived attribute, computed from columns only


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
    now = consumables.utcnow()
    successor = consumables.new_bearer_value()
    row = connection.execute(_ROTATE_REFRESH_TOKEN, {
        "p_kind": kind, "p_lookup": consumables.token_digest(value), "p_now": now,
        "p_client_id": client_id, "p_scopes": scopes,
        "p_absolute_ttl": dt.timedelta(seconds=absolute_ttl),
        "p_created_after": now - dt.timedelta(seconds=absolute_ttl - 1),
        "p_idle_deadline": now + dt.timedelta(seconds=idle_ttl),
        "s_id": new_id(), "s_lookup": consumables.token_digest(successor)}).first()
    if row is None:
        return None
    split = len(_GRANT_NAMES)
    return Rotation(_Columns(_GRANT_NAMES, row[:split]),
                    _UserColumns(_USER_NAMES, row[split:]), successor)


def live_grant_and_user(session: Session, grant_id: str | None, *,
                        unrevoked_jti: str | None = None) -> tuple[Grant, User] | None:
    """A token family that is not revoked and its still enabled user, in one query; with
    ``unrevoked_jti``, only if that access token was not revoked either."""
    if not grant_id:
        return None
    if unrevoked_jti is None:
        row = session.execute(_LIVE_GRANT_AND_USER, {"grant_id": grant_id}).first()
    else:
        row = session.execute(_LIVE_GRANT_AND_USER_UNREVOKED_JTI,
                              {"grant_id": grant_id, "jti": unrevoked_jti}).first()
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

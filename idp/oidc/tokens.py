"""Minting and checking tokens.

Access tokens are JWTs (RFC 9068, ``typ: at+jwt``) signed with the newest key, each with
a random ``jti`` (two tokens minted in the same second for the same user and client must
differ). A user token carries ``gid``, the grant (token family) it belongs to: revoking
the grant deactivates the whole family.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import and_, bindparam, exists, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..persistence import consumables
from ..persistence.models import Client, Grant, RevokedAccessToken, User
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

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

from joserfc import jws, jwt
from joserfc.errors import JoseError
from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..persistence.models import Client, Grant, RevokedAccessToken, User
from .keys import KeyStore

ACCESS_TOKEN_TYP = "at+jwt"


def unverified_kid(token: str) -> str | None:
    """The ``kid`` of a compact JWS's header, unverified: only to pick the key."""
    try:
        kid = jws.extract_compact(token.encode()).protected.get("kid")
    except (JoseError, ValueError, TypeError, AttributeError):
        return None
    return kid if isinstance(kid, str) else None


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

    def sign(self, claims: dict[str, Any], alg: str, typ: str = "JWT") -> str:
        key = self.keys.signing_key(alg)
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, claims, key.key,
                          algorithms=[alg])

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
        return self.sign(claims, self.settings.tokens.access_token_alg, ACCESS_TOKEN_TYP), claims

    def decode_access_token(self, token: str) -> dict[str, Any] | None:
        """Claims of a well-signed, unexpired access token of ours; None otherwise."""
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 4096:
            return None
        try:
            decoded = jwt.decode(token, self.keys.keyset_for(unverified_kid(token)),
                                 algorithms=self.algorithms)
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

    def status(self, session: Session, claims: dict[str, Any]) -> TokenStatus:
        """Not revoked, its client not disabled; for a user's token (``gid``), its family
        alive and its user enabled."""
        jti = claims.get("jti", "")
        if claims.get("gid") is None:
            # None when the client is gone or the token revoked.
            disabled = session.scalar(CLIENT_OF_TOKEN_DISABLED,
                                      {"client_id": claims.get("client_id"), "jti": jti})
            return TokenStatus(disabled is False)
        found = live_grant_and_user(session, claims["gid"], unrevoked_jti=jti)
        if found is None:
            return TokenStatus(False)
        return TokenStatus(True, *found)

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
        return self.sign(claims, self.id_token_alg(client))

    def decode_id_token_hint(self, token: str) -> dict[str, Any] | None:
        """An ID token we issued, even expired (id_token_hint, logout)."""
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
            return None
        try:
            decoded = jwt.decode(token, self.keys.keyset_for(unverified_kid(token)),
                                 algorithms=self.algorithms)
        except (JoseError, ValueError, TypeError):
            return None
        if decoded.header.get("typ") == ACCESS_TOKEN_TYP:
            return None
        claims = dict(decoded.claims)
        if claims.get("iss") != self.issuer or not claims.get("sub") or not claims.get("aud"):
            return None
        return claims


@dataclass
class TokenStatus:
    """Whether an access token is still active, and for a user's token its family and
    user (both alive when active)."""

    active: bool
    grant: Grant | None = None
    user: User | None = None


# Built once (every refresh, userinfo and introspection runs one of them).
LIVE_GRANT_AND_USER = select(Grant, User).join(User, User.id == Grant.user_id) \
    .join(Client, Client.client_id == Grant.client_id).where(
    Grant.id == bindparam("grant_id"), Grant.revoked_at.is_(None), User.disabled.is_(False),
    Client.disabled.is_(False))
LIVE_GRANT_AND_USER_OF_TOKEN = LIVE_GRANT_AND_USER.where(
    ~exists().where(RevokedAccessToken.jti == bindparam("jti")))
# A client's own token (client_credentials): its client's disabled flag, if not revoked.
CLIENT_OF_TOKEN_DISABLED = select(Client.disabled).where(
    Client.client_id == bindparam("client_id"),
    ~exists().where(RevokedAccessToken.jti == bindparam("jti")))


def live_grant_and_user(session: Session, grant_id: str | None,
                        unrevoked_jti: str | None = None) -> tuple[Grant, User] | None:
    """A token family that is not revoked, its still enabled user, and its client not
    disabled, in one query; with ``unrevoked_jti``, only if that access token was not
    revoked on its own."""
    if not grant_id:
        return None
    if unrevoked_jti is None:
        row = session.execute(LIVE_GRANT_AND_USER, {"grant_id": grant_id}).first()
    else:
        row = session.execute(LIVE_GRANT_AND_USER_OF_TOKEN,
                              {"grant_id": grant_id, "jti": unrevoked_jti}).first()
    return None if row is None else (row[0], row[1])


def is_jti_revoked(session: Session, jti: str) -> bool:
    return session.get(RevokedAccessToken, jti) is not None


def revoke_access_token(session: Session, claims: dict[str, Any]) -> None:
    jti = claims.get("jti")
    if jti and not is_jti_revoked(session, jti):
        session.add(RevokedAccessToken(
            jti=jti, expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc)))

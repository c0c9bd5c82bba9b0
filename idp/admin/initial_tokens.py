"""Initial access tokens (RFC 7591 §3): what an administrator hands to the developers of
a démarche app so that it can register itself at the registration endpoint.

A token is shown once, when it is issued, and stored as its SHA-256. It expires, may be
revoked, and may be limited to a number of registrations. Using it is one conditional
``UPDATE`` (live, not used up) that counts the use: two registrations racing for a
token's last use cannot both pass, and a registration that fails afterwards rolls the
count back with everything else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..persistence.models import InitialAccessToken, utcnow

MAX_LABEL_LENGTH = 200


class TokenError(ValueError):
    pass


def token_digest(value: str) -> str:
    """How a token is stored and found: 256 random bits need no slow hash."""
    return hashlib.sha256(value.encode()).hexdigest()


def issue(session: Session, *, label: str, ttl: int, max_uses: int | None = None,
          created_by: str | None = None) -> tuple[InitialAccessToken, str]:
    """A new token, valid ``ttl`` seconds (and for ``max_uses`` registrations when
    given); returns it with its value in clear, to show once."""
    label = (label or "").strip()
    if not label or len(label) > MAX_LABEL_LENGTH:
        raise TokenError(f"a label of 1 to {MAX_LABEL_LENGTH} characters is required")
    if ttl < 60:
        raise TokenError("a token must be valid for at least a minute")
    if max_uses is not None and max_uses < 1:
        raise TokenError("max_uses must be at least 1")
    value = secrets.token_urlsafe(32)
    now = utcnow()
    token = InitialAccessToken(token_hash=token_digest(value), label=label, created_at=now,
                               created_by=created_by, expires_at=now + dt.timedelta(seconds=ttl),
                               max_uses=max_uses, uses=0)
    session.add(token)
    session.flush()
    return token, value


def state(token: InitialAccessToken, now: dt.datetime | None = None) -> str:
    """``active``, ``revoked``, ``expired`` or ``used_up``."""
    now = now or utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at <= now:
        return "expired"
    if token.max_uses is not None and token.uses >= token.max_uses:
        return "used_up"
    return "active"


def list_tokens(session: Session, *, include_inactive: bool = False
                ) -> list[InitialAccessToken]:
    """Newest first; only the usable ones unless ``include_inactive``."""
    query = select(InitialAccessToken).order_by(InitialAccessToken.created_at.desc())
    if not include_inactive:
        query = query.where(*_usable(utcnow()))
    return list(session.scalars(query))


def find(session: Session, token_id: str) -> InitialAccessToken | None:
    if not isinstance(token_id, str) or not 0 < len(token_id) <= 36:
        return None
    return session.get(InitialAccessToken, token_id)


def revoke(session: Session, token: InitialAccessToken) -> bool:
    """Revoke a token; False when it was revoked already."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    return True


@dataclass
class Redemption:
    """The outcome of presenting a token: ``refusal`` is None when it was usable (one use
    is now counted), else why not (``unknown``, ``revoked``, ``expired``, ``used_up``);
    ``token_id`` names the token when it is one of ours."""

    token_id: str | None
    refusal: str | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


def _usable(now: dt.datetime) -> tuple:
    return (InitialAccessToken.revoked_at.is_(None), InitialAccessToken.expires_at > now,
            or_(InitialAccessToken.max_uses.is_(None),
                InitialAccessToken.uses < InitialAccessToken.max_uses))


def redeem(session: Session, value: str) -> Redemption:
    """Count one use of the token ``value`` if it is usable, in the session's
    transaction (commit with the registration it allows)."""
    if not isinstance(value, str) or not 0 < len(value) <= 512:
        return Redemption(None, "unknown")
    digest = token_digest(value)
    now = utcnow()
    token_id = session.execute(
        update(InitialAccessToken)
        .where(InitialAccessToken.token_hash == digest, *_usable(now))
        .values(uses=InitialAccessToken.uses + 1, last_used_at=now)
        .returning(InitialAccessToken.id)
        .execution_options(synchronize_session=False)).scalar()
    if token_id is not None:
        return Redemption(token_id)
    token = session.scalar(select(InitialAccessToken)
                           .where(InitialAccessToken.token_hash == digest))
    if token is None:
        return Redemption(None, "unknown")
    return Redemption(token.id, state(token, now))

"""Issue and consume single-use artefacts (see ``models.Consumable``).

Two shapes:
- bearer values (authorization codes, refresh tokens, email links): a long random value
  given to its holder, found again by its SHA-256;
- short codes (verification, recovery): found by an owner key (``lookup``), checked
  against a keyed hash, with a bounded number of attempts counted *before* the check.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from .models import Consumable, Grant, utcnow


def token_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_bearer_value(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def is_plausible_bearer(value: object) -> bool:
    """A value worth looking up: a non-empty string of bounded length."""
    return isinstance(value, str) and 0 < len(value) <= 512


class Outcome(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"
    REPLAYED = "replayed"  # consumed before: a replay
    EXPIRED = "expired"
    REVOKED = "revoked"
    WRONG_CODE = "wrong_code"
    TOO_MANY_ATTEMPTS = "too_many_attempts"


@dataclass
class ConsumeResult:
    outcome: Outcome
    item: Consumable | None = None
    attempts_left: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


def issue_bearer(session: Session, kind: str, ttl: int, *, value: str | None = None,
                 **fields) -> str:
    """Create a bearer artefact (in the session's transaction); returns the clear value,
    which is never stored. A negative ``ttl`` makes an expired one."""
    value = value or new_bearer_value()
    # Its row refers to an account that may still be pending (a new account's link):
    # no relationship tells the unit of work to write that one first.
    session.flush()
    session.add(Consumable(kind=kind, lookup=token_digest(value),
                           expires_at=utcnow() + dt.timedelta(seconds=ttl), **fields))
    return value


def find_bearer(session: Session, kind: str, value: str) -> Consumable | None:
    return session.scalar(select(Consumable).where(
        Consumable.kind == kind, Consumable.lookup == token_digest(value)))


def find_bearer_with_grant(session: Session, kind: str, value: str
                           ) -> tuple[Consumable, Grant | None] | None:
    """A bearer artefact and its token family (if any), in one query."""
    row = session.execute(
        select(Consumable, Grant).outerjoin(Grant, Grant.id == Consumable.grant_id).where(
            Consumable.kind == kind, Consumable.lookup == token_digest(value))).first()
    return None if row is None else (row[0], row[1])


def _diagnose(item: Consumable | None, now: dt.datetime) -> Outcome:
    if item is None:
        return Outcome.UNKNOWN
    if item.revoked_at is not None:
        return Outcome.REVOKED
    if item.consumed_at is not None:
        return Outcome.REPLAYED
    if item.expires_at <= now:
        return Outcome.EXPIRED
    return Outcome.UNKNOWN


# Built once with bound parameters (every code exchange and refresh runs them): the
# statement is not constructed again at each call. An UPDATE reserves the columns' own
# names for its parameters, hence the p_ prefix.
CONSUME = (
    update(Consumable)
    .where(Consumable.kind == bindparam("p_kind"), Consumable.lookup == bindparam("p_lookup"),
           Consumable.consumed_at.is_(None), Consumable.revoked_at.is_(None),
           Consumable.expires_at > bindparam("p_now"))
    .values(consumed_at=bindparam("p_now"))
    .returning(Consumable)
    .execution_options(populate_existing=True))
BY_LOOKUP = (
    select(Consumable)
    .where(Consumable.kind == bindparam("p_kind"), Consumable.lookup == bindparam("p_lookup"))
    .execution_options(populate_existing=True))


def consume_bearer(session: Session, kind: str, value: str) -> ConsumeResult:
    """Mark the artefact consumed, in one atomic ``UPDATE … RETURNING``: exactly one of
    concurrent callers gets OK; the others learn why not (replayed, expired...)."""
    if not is_plausible_bearer(value):
        return ConsumeResult(Outcome.UNKNOWN)
    now = utcnow()
    found = {"p_kind": kind, "p_lookup": token_digest(value)}
    consumed = session.scalar(CONSUME, {**found, "p_now": now})
    if consumed is not None:
        return ConsumeResult(Outcome.OK, consumed)
    item = session.scalar(BY_LOOKUP, found)
    return ConsumeResult(_diagnose(item, now), item)


def code_digest(secret_key: str, lookup: str, code: str) -> str:
    """Keyed hash of a short code, bound to its lookup key (owner, purpose, destination)."""
    return hmac.new(secret_key.encode(), f"{lookup}\x00{code}".encode(),
                    hashlib.sha256).hexdigest()


def issue_code(session: Session, kind: str, lookup: str, code: str, ttl: int, secret_key: str,
               **fields) -> Consumable:
    """Store a short code; any earlier live code for the same lookup is voided.

    The failures of the code it replaces carry over: asking for a new code must not
    buy five more guesses (a resend does not reset the failure count)."""
    now = utcnow()
    # A column query, not the entity: the identity map may hold a stale attempts count.
    carried_attempts = session.scalar(select(Consumable.attempts).where(
        Consumable.kind == kind, Consumable.lookup == lookup, Consumable.consumed_at.is_(None),
        Consumable.expires_at > now).order_by(Consumable.created_at.desc()).limit(1)) or 0
    session.execute(
        update(Consumable)
        .where(Consumable.kind == kind, Consumable.lookup == lookup,
               Consumable.consumed_at.is_(None), Consumable.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False))
    item = Consumable(kind=kind, lookup=lookup, secret_hash=code_digest(secret_key, lookup, code),
                      expires_at=now + dt.timedelta(seconds=ttl), attempts=carried_attempts,
                      **fields)
    session.add(item)
    return item


def live_code(session: Session, kind: str, lookup: str) -> Consumable | None:
    now = utcnow()
    return session.scalar(select(Consumable).where(
        Consumable.kind == kind, Consumable.lookup == lookup, Consumable.consumed_at.is_(None),
        Consumable.revoked_at.is_(None), Consumable.expires_at > now
    ).order_by(Consumable.created_at.desc()).limit(1))


def verify_code(session: Session, kind: str, lookup: str, code: str, secret_key: str,
                max_attempts: int) -> ConsumeResult:
    """Check a short code. The attempt is counted before the comparison, atomically, so
    parallel guesses cannot exceed ``max_attempts``; success consumes the code."""
    now = utcnow()
    row = session.execute(
        update(Consumable)
        .where(Consumable.kind == kind, Consumable.lookup == lookup,
               Consumable.consumed_at.is_(None), Consumable.revoked_at.is_(None),
               Consumable.expires_at > now, Consumable.attempts < max_attempts)
        .values(attempts=Consumable.attempts + 1)
        .returning(Consumable.id, Consumable.secret_hash, Consumable.attempts)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        latest = session.scalar(select(Consumable).where(
            Consumable.kind == kind, Consumable.lookup == lookup
        ).order_by(Consumable.created_at.desc()).limit(1)
            .execution_options(populate_existing=True))
        if latest is not None and latest.consumed_at is None and latest.revoked_at is None \
                and latest.expires_at > now and latest.attempts >= max_attempts:
            return ConsumeResult(Outcome.TOO_MANY_ATTEMPTS, latest)
        return ConsumeResult(_diagnose(latest, now), latest)
    item_id, secret_hash, attempts = row
    expected = code_digest(secret_key, lookup, code if isinstance(code, str) else "")
    if not hmac.compare_digest(secret_hash or "", expected):
        left = max(0, max_attempts - attempts)
        outcome = Outcome.WRONG_CODE if left else Outcome.TOO_MANY_ATTEMPTS
        return ConsumeResult(outcome, session.get(Consumable, item_id), left)
    consumed = session.execute(
        update(Consumable).where(Consumable.id == item_id, Consumable.consumed_at.is_(None))
        .values(consumed_at=now).execution_options(synchronize_session=False)).rowcount
    item = session.get(Consumable, item_id)
    if item is not None:
        session.refresh(item)
    return ConsumeResult(Outcome.OK if consumed == 1 else Outcome.REPLAYED, item)


def revoke_where(session: Session, *criteria) -> int:
    return session.execute(
        update(Consumable).where(Consumable.revoked_at.is_(None), *criteria)
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False)).rowcount

"""Single sign-on sessions: one row per signed-in browser, shared by every client."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..persistence.models import SsoSession, User, new_id, utcnow

LAST_SEEN_RESOLUTION = dt.timedelta(seconds=60)


def start(session: Session, user: User, *, amr: list[str], acr: str, lifetime: int,
          ip_address: str | None, user_agent: str | None) -> SsoSession:
    """A new SSO session for ``user``, in the session's transaction."""
    now = utcnow()
    sso = SsoSession(id=new_id(), user_id=user.id, auth_time=now, amr=amr, acr=acr,
                     clients=[], ip_address=ip_address, user_agent=(user_agent or "")[:300],
                     created_at=now, last_seen_at=now, reauthenticated_at=now,
                     expires_at=now + dt.timedelta(seconds=lifetime))
    session.add(sso)
    return sso


def load_active(session: Session, sso_id: str, idle_timeout: int
                ) -> tuple[SsoSession, User] | None:
    """The SSO session if still active, with its user (one query)."""
    row = session.execute(select(SsoSession, User).join(User, User.id == SsoSession.user_id)
                          .where(SsoSession.id == sso_id)).first()
    if row is None or row[0].ended_at is not None:
        return None
    sso, user = row[0], row[1]
    now = utcnow()
    # last_seen_at moves at most once per LAST_SEEN_RESOLUTION: allow for it.
    idle_limit = dt.timedelta(seconds=idle_timeout) + LAST_SEEN_RESOLUTION
    if sso.expires_at <= now or now - sso.last_seen_at > idle_limit:
        end(session, sso, "expired")
        return None
    if now - sso.last_seen_at > LAST_SEEN_RESOLUTION:
        sso.last_seen_at = now
    return sso, user


def add_client(sso: SsoSession, client_id: str) -> None:
    """Remember that ``sso`` signed in to ``client_id`` (logout tells each one)."""
    if client_id not in sso.clients:
        sso.clients = [*sso.clients, client_id]


def end(session: Session, sso: SsoSession, reason: str) -> None:
    if sso.ended_at is None:
        sso.ended_at = utcnow()
        sso.ended_reason = reason


def end_all_for_user(session: Session, user_id: str, reason: str,
                     except_id: str | None = None) -> int:
    criteria = [SsoSession.user_id == user_id, SsoSession.ended_at.is_(None)]
    if except_id:
        criteria.append(SsoSession.id != except_id)
    return session.execute(update(SsoSession).where(*criteria)
                           .values(ended_at=utcnow(), ended_reason=reason)
                           .execution_options(synchronize_session=False)).rowcount


def active_for_user(session: Session, user_id: str) -> list[SsoSession]:
    now = utcnow()
    return list(session.scalars(select(SsoSession).where(
        SsoSession.user_id == user_id, SsoSession.ended_at.is_(None),
        SsoSession.expires_at > now).order_by(SsoSession.last_seen_at.desc())))

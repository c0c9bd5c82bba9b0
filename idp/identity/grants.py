"""Token families (``Grant``): what a user authorised a client to do, and every token
minted from it. Revoking a family deactivates all its access and refresh tokens: a
replayed code, a reused refresh token, a user or an administrator withdrawing access,
a password reset, an account deletion."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..persistence import consumables
from ..persistence.models import Consumable, Grant, utcnow


def revoke_grant(session: Session, grant_id: str | None, reason: str) -> bool:
    """Revoke one family and its live codes and refresh tokens; False if it was not live."""
    if not grant_id:
        return False
    changed = session.execute(
        update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session=False)).rowcount
    consumables.revoke_where(session, Consumable.grant_id == grant_id)
    return bool(changed)


def revoke_user_grants(session: Session, user_id: str, reason: str,
                       client_id: str | None = None) -> int:
    """Revoke every live family of a user (of one client only, when given)."""
    criteria = [Grant.user_id == user_id, Grant.revoked_at.is_(None)]
    if client_id:
        criteria.append(Grant.client_id == client_id)
    ids = list(session.scalars(select(Grant.id).where(*criteria)))
    for grant_id in ids:
        revoke_grant(session, grant_id, reason)
    return len(ids)

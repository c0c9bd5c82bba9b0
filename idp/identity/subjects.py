"""The pairwise subjects issued to clients (OIDC Core §8.1), remembered so that a
subject can be traced back to its user (the hub's APIs name users by the ``sub`` the
app received). A pairwise subject is a hash: it cannot be reversed."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..persistence.models import HubSubject, new_id, utcnow


def remember(session: Session, sector: str, subject: str, user_id: str) -> None:
    """Record that the clients of ``sector`` know ``user_id`` as ``subject`` (one
    statement; a subject already recorded is left as it is)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    session.execute(insert(HubSubject).values(
        id=new_id(), sector=sector, subject=subject, user_id=user_id,
        created_at=utcnow()).on_conflict_do_nothing(index_elements=["sector", "subject"]))

"""The audit trail: one row per security-relevant event. Never a secret in it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Text, bindparam, delete, insert, literal, select
from sqlalchemy.orm import Session

from ..persistence.db import lift_statement_timeout
from ..persistence.inserts import insert_attached
from ..persistence.models import AuditEvent, new_id, utcnow

# Keys that must never be written into an event's details, whatever the caller passes.
FORBIDDEN_DETAIL_KEYS = {"password", "code", "token", "secret", "session", "sid_cookie",
                         "access_token", "refresh_token", "id_token", "client_secret"}


def record_event(session: Session, type_: str, *, outcome: str = "success",
                 user_id: str | None = None, client_id: str | None = None,
                 ip_address: str | None = None, user_agent: str | None = None,
                 details: dict[str, Any] | None = None) -> AuditEvent:
    """Write one event in the session's transaction (it commits or rolls back with the
    change it records): one INSERT, without the unit of work, which cost more than the
    statement on the sign-in path, written with the transaction's next statement
    (``persistence.inserts``)."""
    clean = {k: v for k, v in (details or {}).items()
             if k.lower() not in FORBIDDEN_DETAIL_KEYS}
    return insert_attached(session, AuditEvent, id=new_id(), created_at=utcnow(),
                           type=type_, outcome=outcome, user_id=user_id, client_id=client_id,
                           ip_address=ip_address,
                           user_agent=(user_agent or "")[:300] or None, details=clean)


_AUDIT_EVENTS = AuditEvent.__table__


def event_insert_from(rows, name: str, type_: str, *, details: dict[str, Any]):
    """A CTE writing one successful event per row of ``rows`` (a CTE with ``user_id`` and
    ``client_id``), for a statement that records its change in itself (see
    ``oidc.tokens.exchange_code``). Its parameters: ``a_id`` (the event's id) and
    ``p_now``."""
    clean = {k: v for k, v in details.items() if k.lower() not in FORBIDDEN_DETAIL_KEYS}
    return (
        insert(_AUDIT_EVENTS)
        .from_select(
            ["id", "created_at", "type", "outcome", "user_id", "client_id", "details"],
            select(bindparam("a_id", type_=Text),
                   bindparam("p_now", type_=_AUDIT_EVENTS.c.created_at.type),
                   literal(type_, Text), literal("success", Text), rows.c.user_id,
                   rows.c.client_id, literal(clean, JSON)).select_from(rows),
            include_defaults=False)
        .returning(_AUDIT_EVENTS.c.id)
        .cte(name))


def purge_older_than(session: Session, days: int) -> int:
    lift_statement_timeout(session)
    cutoff = utcnow() - dt.timedelta(days=days)
    return session.execute(delete(AuditEvent).where(AuditEvent.created_at < cutoff)).rowcount

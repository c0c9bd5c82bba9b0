"""The audit trail: one row per security-relevant event. Never a secret in it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ..persistence.db import lift_statement_timeout
from ..metrics import SIGN_INS
from ..persistence.models import AuditEvent, new_id, utcnow

# The events of a sign-in's end, counted by outcome (the failure's reason).
SIGN_IN_EVENTS = ("login.success", "login.failure")
# Keys that must never be written into an event's details, whatever the caller passes.
FORBIDDEN_DETAIL_KEYS = {"password", "code", "token", "secret", "session", "sid_cookie",
                         "access_token", "refresh_token", "id_token", "client_secret"}


def record_event(session: Session, type_: str, *, outcome: str = "success",
                 user_id: str | None = None, client_id: str | None = None,
                 ip_address: str | None = None, user_agent: str | None = None,
                 details: dict[str, Any] | None = None) -> AuditEvent:
    """Add one event to the session's transaction: it commits or rolls back with the
    change it records."""
    clean = {k: v for k, v in (details or {}).items()
             if k.lower() not in FORBIDDEN_DETAIL_KEYS}
    if type_ in SIGN_IN_EVENTS:
        SIGN_INS.labels(str(clean.get("reason") or outcome)).inc()
    event = AuditEvent(id=new_id(), created_at=utcnow(), type=type_, outcome=outcome,
                       user_id=user_id, client_id=client_id, ip_address=ip_address,
                       user_agent=(user_agent or "")[:300] or None, details=clean)
    session.add(event)
    return event


def purge_older_than(session: Session, days: int) -> int:
    lift_statement_timeout(session)
    cutoff = utcnow() - dt.timedelta(days=days)
    return session.execute(delete(AuditEvent).where(AuditEvent.created_at < cutoff)).rowcount

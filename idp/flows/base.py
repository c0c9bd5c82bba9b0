"""Create and load flows. Pure functions over a SQLAlchemy session."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from sqlalchemy import bindparam, delete
from sqlalchemy.orm import Session

from ..persistence.inserts import insert_attached
from ..persistence.models import Flow, new_id, utcnow

DEFAULT_FLOW_TTL = 30 * 60


class FlowError(Exception):
    """The flow is unknown, expired, of another type, or belongs to another browser."""


def create_flow(session: Session, type_: str, *, state: str, browser: str | None,
                return_to: str | None = None, user_id: str | None = None,
                data: dict | None = None, ttl: int = DEFAULT_FLOW_TTL) -> Flow:
    now = utcnow()
    # Written at once, without the unit of work: each sign-in creates two flows.
    return insert_attached(session, Flow, id=new_id(), type=type_, state=state,
                           browser=browser, return_to=safe_return_to(return_to),
                           user_id=user_id, data=data or {}, created_at=now, updated_at=now,
                           expires_at=now + dt.timedelta(seconds=ttl))


def load_flow(session: Session, flow_id: str | None, type_: str, browser: str | None) -> Flow:
    if not flow_id or len(flow_id) > 64:
        raise FlowError("missing")
    flow = session.get(Flow, flow_id)
    if flow is None or flow.type != type_:
        raise FlowError("unknown")
    if flow.browser is not None and flow.browser != browser:
        raise FlowError("other browser")
    if flow.expires_at <= utcnow():
        raise FlowError("expired")
    return flow


_DELETE_FLOW = delete(Flow.__table__).where(Flow.__table__.c.id == bindparam("flow_id"))


def delete_flow(session: Session, flow: Flow) -> None:
    """Delete ``flow`` in the session's transaction: one DELETE, without the unit of
    work (which would flush it with whatever else is pending, at more cost on the sign-in
    path; docs/performance.md, seventh pass)."""
    session.execute(_DELETE_FLOW, {"flow_id": flow.id})
    session.expunge(flow)


def safe_return_to(value: str | None) -> str | None:
    """Only local paths: a flow never redirects to another site (open redirect)."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") \
            or "\\" in value:
        return None
    return value

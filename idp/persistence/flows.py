"""Create, load, change and delete flows.

A flow lives in the key-value store (Redis in production), beside the browser session
it is bound to: it is of no use once that session is gone, so it needs no more
durability than the session has.

A flow still moves on with the SQL transaction of the step that moves it, as when it
was a row: the functions take the request's SQLAlchemy session, and what a step
created, changed or deleted is written to the store when that session commits (in one
round trip), and undone if it rolls back. :func:`attach_store` wires this up, once per
session factory.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from .kv import KeyValueStore
from .models import new_id, utcnow

DEFAULT_FLOW_TTL = 30 * 60
KEY_PREFIX = "flow:"
_STORE = "flow_store"
_TRACKED = "flows"


class FlowError(Exception):
    """The flow is unknown, expired, of another type, or belongs to another browser."""


@dataclass(eq=False)
class Flow:
    """A self-service flow (login, registration, recovery...) or a pending authorization
    request, modelled after ORY Kratos: an id, a type, a state and an expiry.
    ``return_to`` is where the browser goes when the flow completes; ``browser`` binds
    the flow to the browser session that started it (a hash of the session id)."""

    id: str
    type: str
    state: str
    expires_at: dt.datetime
    browser: str | None = None
    return_to: str | None = None
    user_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime = field(default_factory=utcnow)
    updated_at: dt.datetime = field(default_factory=utcnow)


# What is stored, apart from the id (the key) and updated_at (set when the rest changes).
_FIELDS = ("type", "state", "browser", "return_to", "user_id", "data")
_TIMES = ("created_at", "expires_at")


def _content(flow: Flow) -> dict[str, Any]:
    content = {name: getattr(flow, name) for name in _FIELDS}
    for name in _TIMES:
        content[name] = getattr(flow, name).timestamp()
    return content


def _encode(content: dict[str, Any]) -> str:
    return json.dumps(content, separators=(",", ":"), sort_keys=True)


def _attributes(content: dict[str, Any], times: tuple[str, ...] = _TIMES) -> dict[str, Any]:
    """The flow's attributes from what :func:`_content` stored (the inverse)."""
    return {**{name: content[name] for name in _FIELDS},
            **{name: dt.datetime.fromtimestamp(content[name], dt.timezone.utc)
               for name in times}}


def _decode(flow_id: str, raw: bytes) -> Flow | None:
    try:
        return Flow(id=flow_id, **_attributes(json.loads(raw), (*_TIMES, "updated_at")))
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: as good as gone


class _Tracked:
    """A flow the session's transaction may change: its content when last stored
    (None if never stored), and whether the transaction deletes it."""

    __slots__ = ("flow", "stored", "deleted")

    def __init__(self, flow: Flow, stored: str | None) -> None:
        self.flow = flow
        self.stored = stored
        self.deleted = False


def _tracked(session: Session) -> dict[str, _Tracked]:
    return session.info.setdefault(_TRACKED, {})


def _store(session: Session) -> KeyValueStore:
    try:
        return session.info[_STORE]
    except KeyError:
        raise RuntimeError("no flow store: call idp.persistence.flows.attach_store") from None


def create_flow(session: Session, type_: str, *, state: str, browser: str | None,
                return_to: str | None = None, user_id: str | None = None,
                data: dict | None = None, ttl: int = DEFAULT_FLOW_TTL) -> Flow:
    """A new flow, stored when ``session`` commits."""
    now = utcnow()
    flow = Flow(id=new_id(), type=type_, state=state, browser=browser,
                return_to=safe_return_to(return_to), user_id=user_id, data=data or {},
                created_at=now, updated_at=now, expires_at=now + dt.timedelta(seconds=ttl))
    _tracked(session)[flow.id] = _Tracked(flow, None)
    return flow


def load_flow(session: Session, flow_id: str | None, type_: str, browser: str | None) -> Flow:
    """The flow ``flow_id`` of type ``type_`` started by this browser, if still valid.
    Loaded once per session: a second load returns the same object."""
    if not flow_id or len(flow_id) > 64:
        raise FlowError("missing")
    tracked = _tracked(session)
    entry = tracked.get(flow_id)
    if entry is not None:
        if entry.deleted:
            raise FlowError("unknown")
        flow = entry.flow
    else:
        flow = read_flow(_store(session), flow_id)
        if flow is None:
            raise FlowError("unknown")
        tracked[flow_id] = _Tracked(flow, _encode(_content(flow)))
    if flow.type != type_:
        raise FlowError("unknown")
    if flow.browser is not None and flow.browser != browser:
        raise FlowError("other browser")
    if flow.expires_at <= utcnow():
        raise FlowError("expired")
    return flow


def read_flow(store: KeyValueStore, flow_id: str) -> Flow | None:
    """The flow as stored, outside any transaction and unchecked (for tests and
    operations; steps use :func:`load_flow`)."""
    raw = store.get(KEY_PREFIX + flow_id)
    return _decode(flow_id, raw) if raw is not None else None


def delete_flow(session: Session, flow: Flow) -> None:
    """Delete ``flow`` when ``session`` commits."""
    tracked = _tracked(session)
    entry = tracked.get(flow.id)
    if entry is None:  # loaded by another session: taken to be as stored
        entry = tracked[flow.id] = _Tracked(flow, _encode(_content(flow)))
    entry.deleted = True


def attach_store(session_factory: sessionmaker, store: KeyValueStore) -> None:
    """Keep the flows of ``session_factory``'s sessions in ``store``."""
    session_factory.configure(info={**session_factory.kw.get("info", {}), _STORE: store})
    event.listen(session_factory, "after_commit", _write_changes)
    event.listen(session_factory, "after_soft_rollback", _undo_changes)


def _write_changes(session: Session) -> None:
    tracked = session.info.get(_TRACKED)
    if not tracked:
        return
    now = utcnow()
    sets: dict[str, tuple[bytes, int]] = {}
    deletes: list[str] = []
    for flow_id, entry in list(tracked.items()):
        if entry.deleted:
            del tracked[flow_id]
            if entry.stored is not None:
                deletes.append(KEY_PREFIX + flow_id)
            continue
        content = _content(entry.flow)
        encoded = _encode(content)
        if encoded == entry.stored:
            continue
        ttl = math.ceil((entry.flow.expires_at - now).total_seconds())
        if ttl <= 0:  # expired meanwhile: nothing to keep
            del tracked[flow_id]
            if entry.stored is not None:
                deletes.append(KEY_PREFIX + flow_id)
            continue
        entry.flow.updated_at = now
        entry.stored = encoded
        content["updated_at"] = now.timestamp()
        sets[KEY_PREFIX + flow_id] = (_encode(content).encode(), ttl)
    if sets or deletes:
        _store(session).write(sets, deletes)


def _undo_changes(session: Session, previous_transaction) -> None:
    """As the ORM does for rows on a rollback: a flow created in the transaction is
    forgotten, a deleted or changed one is back to what was stored."""
    if previous_transaction.parent is not None:
        return  # a savepoint: the outer transaction goes on
    tracked = session.info.get(_TRACKED)
    if not tracked:
        return
    for flow_id, entry in list(tracked.items()):
        if entry.stored is None:
            del tracked[flow_id]
            continue
        entry.deleted = False
        for name, value in _attributes(json.loads(entry.stored)).items():
            setattr(entry.flow, name, value)


MAX_RETURN_TO = 2000


def safe_return_to(value: str | None) -> str | None:
    """Only local paths: a flow never redirects to another site (open redirect), nor
    to anything a Location header cannot carry."""
    if not value or len(value) > MAX_RETURN_TO \
            or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") \
            or "\\" in value:
        return None
    return value

"""Clients, cached in each worker: every token, introspection and authorization request
looks its client up, and clients change rarely.

- A change committed through the application's sessions (admin console, CLI, any
  code over ``db.session`` or ``db.transaction()``) empties this process's cache at
  once and bumps a version key in the key-value store.
- Other processes (the other workers, other instances) read that key at most once per
  ``VERSION_CHECK_INTERVAL`` second and empty their cache when it moved: they see a
  change within a second.
- An entry is also dropped after ``MAX_AGE`` seconds, for changes made outside the
  application (SQL by hand). With the in-process store (the one-process default, no
  Redis) the version key is not shared with the CLI's process: entries live
  ``UNSHARED_MAX_AGE`` seconds there, so an ``idp clients ...`` change is seen within
  that time.

What the cache hands out is a detached copy (never attached to a session, shared by the
worker's threads): read it, never modify it. Code that changes a client loads it with
its session (``session.get(Client, ...)``), as the admin console does.
"""

from __future__ import annotations

import copy
import threading
import time

from sqlalchemy import event
from sqlalchemy.orm import Session

from ..persistence.db import Database
from ..persistence.kv import KeyValueStore
from ..persistence.models import Client

VERSION_KEY = "clients:version"
VERSION_TTL = 90 * 86400  # a lost key reads as a change: caches are emptied, no harm
VERSION_CHECK_INTERVAL = 1.0
MAX_AGE = 60.0
UNSHARED_MAX_AGE = 5.0

_COLUMNS = [attr.key for attr in Client.__mapper__.column_attrs]


def _detached_copy(client: Client) -> Client:
    return Client(**{key: copy.deepcopy(getattr(client, key)) for key in _COLUMNS})


class ClientCache:
    def __init__(self, db: Database, kv: KeyValueStore, clock=time.monotonic) -> None:
        self.db = db
        self.kv = kv
        self.clock = clock
        self.max_age = MAX_AGE if getattr(kv, "shared_between_processes", False) \
            else UNSHARED_MAX_AGE
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Client | None]] = {}
        self._version: bytes | None = None
        self._checked_at = float("-inf")
        event.listen(db.session_factory, "after_flush", self._after_flush)
        event.listen(db.session_factory, "after_commit", self._after_commit)
        event.listen(db.session_factory, "after_soft_rollback", self._after_rollback)

    # -- lookups ------------------------------------------------------------
    def get(self, session: Session, client_id: str) -> Client | None:
        now = self.clock()
        self._check_version(now)
        entry = self._entries.get(client_id)
        if entry is not None and now - entry[0] < self.max_age:
            return entry[1]
        version = self._version
        found = session.get(Client, client_id)
        value = _detached_copy(found) if found is not None else None
        with self._lock:
            # Not stored if the clients changed meanwhile (the row may predate it).
            if self._version == version:
                self._entries[client_id] = (now, value)
        return value

    def _check_version(self, now: float) -> None:
        if now - self._checked_at < VERSION_CHECK_INTERVAL:
            return
        self._checked_at = now
        version = self.kv.get(VERSION_KEY)
        if version != self._version:
            with self._lock:
                self._entries.clear()
                self._version = version

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._checked_at = float("-inf")  # re-read the version at the next lookup

    # -- invalidation -------------------------------------------------------
    def _after_flush(self, session: Session, _context) -> None:
        for obj in (*session.new, *session.dirty, *session.deleted):
            if isinstance(obj, Client):
                session.info["clients_changed"] = True
                return

    def _after_commit(self, session: Session) -> None:
        if session.info.pop("clients_changed", False):
            self.kv.incr(VERSION_KEY, VERSION_TTL)
            self.clear()

    def _after_rollback(self, session: Session, _previous) -> None:
        session.info.pop("clients_changed", None)

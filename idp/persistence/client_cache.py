"""Clients, cached in each process for a few seconds: every token, introspection and
authorization request looks its client up, and clients change rarely.

A change made through the application (admin console, CLI) drops the entry in the
process that made it (:meth:`ClientCache.forget`); other processes and instances see it
when their entry expires, within ``ttl`` seconds.

What the cache hands out is a detached copy, shared by the process's threads: read it,
never modify it. Code that changes a client loads it with its session.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session, make_transient

from .models import Client

DEFAULT_TTL = 10.0


class ClientCache:
    def __init__(self, ttl: float = DEFAULT_TTL, clock=time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Client | None]] = {}

    def get(self, session: Session, client_id: str) -> Client | None:
        now = self.clock()
        entry = self._entries.get(client_id)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        client = session.get(Client, client_id)
        if client is not None:
            session.expunge(client)
            make_transient(client)
        with self._lock:
            self._entries[client_id] = (now, client)
        return client

    def forget(self, client_id: str | None = None) -> None:
        """Drop one client's entry (every entry when ``client_id`` is None)."""
        with self._lock:
            if client_id is None:
                self._entries.clear()
            else:
                self._entries.pop(client_id, None)

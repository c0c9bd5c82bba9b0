"""Server-side browser sessions.

The cookie carries only a random 256-bit id; the data lives in the key-value store
(Redis in production) under the SHA-256 of that id, so a leaked store dump cannot be
replayed as cookies. Sessions expire after ``idle_timeout`` without use and
``absolute_lifetime`` after creation. ``regenerate()`` issues a new id (at login, at MFA,
at privilege change) and destroys the old one.

Writes are lazy: a request that changes nothing writes the session back only when the
last write is older than ``WRITE_INTERVAL`` seconds, which saves one store write per
request. To keep the idle semantics exact on the safe side of the user (a session used
at time t stays valid until at least t + idle_timeout), the stored copy lives
``idle_timeout + WRITE_INTERVAL`` after its last write; a session therefore ends between
``idle_timeout`` and ``idle_timeout + WRITE_INTERVAL`` after its last use, and never
after ``absolute_lifetime``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from ..persistence.kv import UNAVAILABLE, KeyValueStore

CREATED_KEY = "_created"
WRITTEN_KEY = "_written"
# A session that changes nothing is written back at most once per this many seconds.
WRITE_INTERVAL = 60


def session_storage_key(session_id: str) -> str:
    return "sess:" + hashlib.sha256(session_id.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, sid: str | None = None, new: bool = False,
                 transient: bool = False) -> None:
        def on_update(_self):
            _self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = new
        self.modified = False
        self.previous_sid: str | None = None
        self.destroyed = False
        # Never stored, never sent as a cookie.
        self.transient = transient
        self.store_unavailable = False

    def regenerate(self) -> None:
        """New id, same data: defeats session fixation."""
        if self.sid and not self.previous_sid:
            self.previous_sid = self.sid
        self.sid = None
        self.modified = True

    def destroy(self) -> None:
        self.clear()
        self.destroyed = True
        self.modified = True

    @property
    def browser_id(self) -> str:
        """A stable, non-secret identifier of this browser session (binds flows)."""
        if "_bid" not in self:
            self["_bid"] = secrets.token_hex(16)
        return self["_bid"]


class ServerSessionInterface(SessionInterface):
    def __init__(self, store: KeyValueStore, cookie_name: str, secure: bool,
                 idle_timeout: int, absolute_lifetime: int,
                 sessionless_paths: tuple[str, ...] = ()) -> None:
        self.store = store
        # Requests to these paths get an empty session that is never stored, whatever
        # cookie they carry (the protocol endpoints for relying parties' servers).
        self.sessionless_paths = sessionless_paths
        # The __Host- prefix pins the cookie to this host, path / and HTTPS.
        self.cookie_name = f"__Host-{cookie_name}" if secure else cookie_name
        self.secure = secure
        self.idle_timeout = idle_timeout
        self.absolute_lifetime = absolute_lifetime

    def open_session(self, app, request) -> ServerSession:
        if self.sessionless_paths and request.path.startswith(self.sessionless_paths):
            return ServerSession(new=True, transient=True)
        sid = request.cookies.get(self.cookie_name)
        if sid and 20 <= len(sid) <= 100:
            try:
                raw = self.store.get(session_storage_key(sid))
            except UNAVAILABLE:
                # An empty session that is never written: the request is answered 503
                # (idp.outages) without signing the browser out.
                session = ServerSession(new=True, transient=True)
                session.store_unavailable = True
                return session
            if raw is not None:
                try:
                    data = json.loads(raw)
                except ValueError:
                    data = None
                if isinstance(data, dict) and self._alive(data, time.time()):
                    return ServerSession(data, sid=sid)
                # Expired by the clock even if the store still holds it: remove it.
                self.store.delete(session_storage_key(sid))
        return ServerSession(new=True)

    def _alive(self, data: dict, now: float) -> bool:
        created = data.get(CREATED_KEY)
        written = data.get(WRITTEN_KEY, created)
        if not isinstance(created, (int, float)) or not isinstance(written, (int, float)):
            return False
        return (now - created < self.absolute_lifetime
                and now - written < self.idle_timeout + WRITE_INTERVAL)

    def _forget(self, keys: list[str]) -> None:
        if keys:
            self.store.delete(*keys)

    def save_session(self, app, session: ServerSession, response) -> None:
        if session.transient:
            return
        cookie_kwargs = dict(path="/", secure=self.secure, httponly=True, samesite="Lax")
        # A regenerated session's old copy goes in the same round trip as the new one.
        gone = [session_storage_key(session.previous_sid)] if session.previous_sid else []
        if session.destroyed or (not session and session.sid):
            if session.sid:
                gone.append(session_storage_key(session.sid))
            self._forget(gone)
            response.delete_cookie(self.cookie_name, **cookie_kwargs)
            return
        if not session:
            self._forget(gone)
            return
        response.vary.add("Cookie")
        now = time.time()
        new_id = session.sid is None
        if new_id:
            session.sid = secrets.token_urlsafe(32)
        # Plain dict operations: they must not flag the session as modified.
        dict.setdefault(session, CREATED_KEY, int(now))
        stale = now - session.get(WRITTEN_KEY, 0) >= WRITE_INTERVAL
        if new_id or session.modified or stale:
            remaining = self.absolute_lifetime - (now - session[CREATED_KEY])
            if remaining <= 0:
                self._forget(gone)
                response.delete_cookie(self.cookie_name, **cookie_kwargs)
                return
            dict.__setitem__(session, WRITTEN_KEY, int(now))
            ttl = int(max(1, min(self.idle_timeout + WRITE_INTERVAL, remaining)))
            self.store.write({session_storage_key(session.sid):
                              (json.dumps(dict(session)).encode(), ttl)}, gone)
        else:
            self._forget(gone)
        if new_id:
            # A session cookie (no expiry): the server decides when the session ends.
            response.set_cookie(self.cookie_name, session.sid, **cookie_kwargs)

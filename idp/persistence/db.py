"""Engine and session handling.

One ``Database`` per application. Request code uses ``db.session`` (a scoped session,
removed at the end of each app context); services receive a session explicitly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from .inserts import WriteBehindSession, write_behind


# Seconds to wait for a PostgreSQL connection before the request fails.
CONNECT_TIMEOUT = 5


def make_engine(url: str, statement_timeout: float = 0, **kwargs) -> Engine:
    """``statement_timeout``: PostgreSQL cancels a statement running longer (seconds,
    0: no limit); set on every connection when it opens, so it costs no round trip."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            # WAL lets the demo's readers and writer work side by side.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    connect_args: dict = {"connect_timeout": CONNECT_TIMEOUT,
                          "cursor_factory": lean_description_cursor()}
    if statement_timeout > 0:
        # Added to the URL's own ``options`` (connect_args would replace them).
        options = make_url(url).query.get("options", "")
        options = " ".join(options) if isinstance(options, tuple) else options
        connect_args["options"] = " ".join(filter(None, [
            options, f"-c statement_timeout={round(statement_timeout * 1000)}"]))
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle_connections(engine)
    return engine


def lean_description_cursor() -> type:
    """A psycopg cursor whose ``description`` is a list of plain 7-tuples (name, type
    code, then None: the DB-API allows any 7-item sequences), where psycopg builds a
    ``Column`` object per column, with a type lookup, at every access. SQLAlchemy reads
    it once per statement, if only to see whether rows came back, and indexes [0] and
    [1]: for a read of a grant and its user (37 columns) that was 40 % of the
    statement's CPU on the client (docs/performance-history.md, ninth pass)."""
    import psycopg
    from psycopg import pq

    with_rows = {status for status in (
        pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE,
        getattr(pq.ExecStatus, "TUPLES_CHUNK", None)) if status is not None}

    class LeanDescriptionCursor(psycopg.Cursor):
        __slots__ = ()

        @property
        def description(self):
            res = self.pgresult
            if not res or not (res.nfields or res.status in with_rows):
                return None
            encoding = self._encoding
            return [((res.fname(i) or b"").decode(encoding) or f"column_{i + 1}",
                     res.ftype(i), None, None, None, None, None)
                    for i in range(res.nfields)]

    return LeanDescriptionCursor


def lift_statement_timeout(executor: Session | scoped_session | Connection) -> None:
    """No statement timeout for the rest of this transaction (``SET LOCAL``: the pooled
    connection gets its timeout back): migrations and daily purges may legitimately run
    statements longer than a request may."""
    bind = executor if isinstance(executor, Connection) else executor.get_bind()
    if bind.dialect.name == "postgresql":
        executor.execute(text("SET LOCAL statement_timeout = 0"))


# A pooled connection idle for longer than this is tested (SELECT 1) before use.
PING_AFTER_IDLE = 10.0


def _ping_idle_connections(engine: Engine) -> None:
    """``pool_pre_ping`` for connections that have been idle a while only.

    ``pool_pre_ping`` costs one round trip at every checkout, and a request checks a
    connection out once per transaction. A connection used in the last
    ``PING_AFTER_IDLE`` seconds is handed out as is; an older one is pinged, and
    replaced if the server dropped it (restart, failover, idle timeout of a proxy). A
    connection that dies within those seconds fails its request, and SQLAlchemy then
    renews the whole pool."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except Exception as error:  # noqa: BLE001 - any failure: use another connection
            raise exc.DisconnectionError() from error


class Database:
    def __init__(self, url: str, statement_timeout: float = 0, **engine_kwargs) -> None:
        self.url = url
        self.engine = make_engine(url, statement_timeout, **engine_kwargs)
        self.session_factory = sessionmaker(bind=self.engine, expire_on_commit=False,
                                            class_=WriteBehindSession)
        self.session = scoped_session(self.session_factory)
        # Rows of insert_attached are written with the next statement (persistence.inserts).
        write_behind(self.session_factory)
        # Single statements in autocommit (``single_statement``): no BEGIN and no COMMIT
        # or ROLLBACK round trips around them. Same pool, same connections.
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A fresh session committed on success, rolled back on error."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A Core connection in autocommit, for one statement that is atomic by itself
        (PostgreSQL runs it as its own transaction), or for reads that need no snapshot in
        common (userinfo, introspection): no BEGIN or COMMIT round trip, and none of the
        ORM session's bookkeeping. Never for two writes that must be atomic together."""
        with self._autocommit_engine.connect() as connection:
            yield connection

    def remove(self) -> None:
        self.session.remove()

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()

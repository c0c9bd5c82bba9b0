"""Engine and session handling.

One ``Database`` per application. Request code uses ``db.session`` (a scoped session,
removed at the end of each app context); services receive a session explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, scoped_session, sessionmaker

# Seconds to wait for a PostgreSQL connection before the request fails.
CONNECT_TIMEOUT = 5
# Connections older than this are replaced (a proxy or firewall may drop idle ones).
POOL_RECYCLE = 1800


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
    # A connection the server dropped (restart, failover) is replaced before use.
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_recycle", POOL_RECYCLE)
    connect_args: dict = {"connect_timeout": CONNECT_TIMEOUT}
    if statement_timeout > 0:
        # Added to the URL's own ``options`` (connect_args would replace them).
        options = make_url(url).query.get("options", "")
        options = " ".join(options) if isinstance(options, tuple) else options
        connect_args["options"] = " ".join(filter(None, [
            options, f"-c statement_timeout={round(statement_timeout * 1000)}"]))
    return create_engine(url, connect_args=connect_args, **kwargs)


def lift_statement_timeout(executor: Session | scoped_session | Connection) -> None:
    """No statement timeout for the rest of this transaction (``SET LOCAL``: the pooled
    connection gets its timeout back): migrations and daily purges may legitimately run
    statements longer than a request may."""
    bind = executor if isinstance(executor, Connection) else executor.get_bind()
    if bind.dialect.name == "postgresql":
        executor.execute(text("SET LOCAL statement_timeout = 0"))


class Database:
    def __init__(self, url: str, statement_timeout: float = 0, **engine_kwargs) -> None:
        self.url = url
        self.engine = make_engine(url, statement_timeout, **engine_kwargs)
        self.session_factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.session = scoped_session(self.session_factory)

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

    def remove(self) -> None:
        self.session.remove()

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()

"""PostgreSQL cancels a statement running longer than ``database_statement_timeout``, so that
a stuck query fails its request instead of holding a thread; migrations and the daily
purges are exempt."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, text

from idp.persistence import migrate
from idp.persistence.db import Database, make_engine
from idp.persistence.maintenance import purge_expired
from idp.security.audit import purge_older_than


@pytest.fixture
def postgresql(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (the suite's PostgreSQL pass runs it)")
    return database_url


def test_the_application_engine_carries_the_configured_timeout(svc, postgresql):
    assert svc.settings.database_statement_timeout == 15.0
    with svc.db.engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "15s"
        # the URL's own options (here the test schema) are kept
        assert connection.execute(text("SHOW search_path")).scalar().startswith("test_")


def test_a_longer_statement_is_cancelled(postgresql):
    db = Database(postgresql, statement_timeout=0.2)
    try:
        with db.engine.connect() as connection:
            with pytest.raises(exc.OperationalError, match="statement timeout"):
                connection.execute(text("SELECT pg_sleep(2)"))
        with db.engine.connect() as connection:  # the pool goes on working
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()


def test_no_timeout_when_set_to_zero(postgresql):
    engine = make_engine(postgresql, statement_timeout=0)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "0"
    finally:
        engine.dispose()


def test_migrations_run_without_the_timeout(postgresql, monkeypatch):
    seen = {}

    def fake_upgrade(config, revision):
        connection = config.attributes["connection"]
        seen["during"] = connection.exec_driver_sql("SHOW statement_timeout").scalar()

    monkeypatch.setattr(migrate.command, "upgrade", fake_upgrade)
    db = Database(postgresql, statement_timeout=0.2)
    try:
        migrate.upgrade(db)
        assert seen["during"] == "0"
        with db.engine.connect() as connection:  # SET LOCAL: the pooled connection keeps it
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "200ms"
    finally:
        db.dispose()


@pytest.mark.parametrize("purge", [
    lambda session: purge_expired(session, refresh_token_ttl=3600),
    lambda session: purge_older_than(session, days=365),
], ids=["idp purge", "idp audit purge"])
def test_daily_purges_run_without_the_timeout(postgresql, purge):
    db = Database(postgresql, statement_timeout=0.2)
    try:
        with db.transaction() as session:
            purge(session)
            assert session.execute(text("SHOW statement_timeout")).scalar() == "0"
        with db.engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "200ms"
    finally:
        db.dispose()

"""The psycopg cursor of the application's engine describes results as plain tuples
(idp/persistence/db.py, ``lean_description_cursor``): the same names and type codes as
psycopg's own ``Column`` objects, for rows, for no rows, and for statements without
rows."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import select, text

from idp.persistence.models import Grant, User


@pytest.fixture
def raw_connection(svc, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (the suite's PostgreSQL pass runs it)")
    with svc.db.engine.connect() as connection:
        yield connection.connection.driver_connection


@pytest.mark.parametrize("sql", [
    "SELECT 1 AS one, 'x'::text AS letter, now() AS at, NULL::json AS nothing",
    "SELECT 1 AS one WHERE false",
    "SELECT",
])
def test_descriptions_match_psycopgs(raw_connection, sql):
    lean = raw_connection.cursor()
    plain = psycopg.Cursor(raw_connection)
    assert type(lean) is not psycopg.Cursor  # the engine's factory is in place
    lean.execute(sql)
    plain.execute(sql)
    assert plain.description is not None and lean.description is not None
    assert [(c[0], c[1]) for c in lean.description] == \
        [(c.name, c.type_code) for c in plain.description]
    assert all(len(c) == 7 for c in lean.description)


def test_statements_without_rows_have_no_description(raw_connection):
    cursor = raw_connection.cursor()
    cursor.execute("SET LOCAL statement_timeout = 0")
    assert cursor.description is None


def test_orm_reads_through_it(app, svc, user, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (the suite's PostgreSQL pass runs it)")
    with app.app_context():
        found = svc.db.session.execute(select(User).where(User.id == user.id)).scalar_one()
        assert found.email == user.email
        assert svc.db.session.execute(select(Grant)).first() is None
        assert svc.db.session.execute(text("SELECT 2 AS two")).mappings().one() == {"two": 2}

"""Work per request on the hot paths: SQL statements and key-value store calls.

Not a timing test: these counts are exact, and each statement or store call is a round
trip to PostgreSQL or Redis in production, which is most of what a request costs besides
Python itself (docs/performance.md). A change that adds one fails here, with the list of
what the step now does, and either lowers the cost again or raises the budget on purpose.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from sqlalchemy import event

from tests.conftest import basic_auth
from tests.oidc.test_token import bearer
from tests.support import form_with, query_of

STORE_METHODS = ("get", "get_many", "set", "set_if_absent", "delete", "write", "incr",
                 "incr_and_get", "begin_attempt", "ttl", "expire")

# step: (SQL statements, store calls), at most.
BUDGETS = {
    # Flows live in the store (idp/flows/base.py), written when the step commits. The
    # authorization request answers with the login page: both flows in one write; the
    # captcha counter; the new browser session.
    "authorize": (0, 3),
    # The login answers the authorization request in place (idp/flows/continuation.py),
    # in one transaction: user with MFA, audit, SSO row with its client, the grant, the
    # code. Store: session, rate limit, login flow, captcha counters, the account's
    # attempt (lock, block and delay read, counted: one script), its failures wiped, the
    # authorize flow, both flows gone, new session.
    "login": (5, 9),
    "token (code)": (4, 0),        # code consumed, grant+user, audit, refresh token
    "userinfo": (1, 0),            # grant+user+revocation, one SELECT
    "token (refresh)": (3, 0),     # consumed, grant+user, successor
    "introspection": (1, 0),
    # Successful token requests count against no rate limit (only failures do).
    "token (client_credentials)": (0, 0),
}
# On PostgreSQL a code exchange is one statement (consumed, grant+user, refresh token,
# audit) and so is a refresh's rotation (consumed, grant+user, successor), each outside a
# transaction block (idp/oidc/tokens.py).
# The login's writes are one statement too: the token family and its code carry the
# audit event and the SSO session in their WITH clause (idp/oidc/grants.py,
# idp/persistence/inserts.py), after the user's SELECT.
POSTGRES_BUDGETS = {**BUDGETS, "login": (2, 9), "token (code)": (1, 0),
                    "token (refresh)": (1, 0)}


class Meter:
    def __init__(self, svc, monkeypatch) -> None:
        self.step = "setup"
        self.steps: list[str] = []
        self.statements: dict[str, list[str]] = defaultdict(list)
        self.store_calls: dict[str, list[str]] = defaultdict(list)

        @event.listens_for(svc.db.engine, "before_cursor_execute")
        def _statement(_conn, _cursor, statement, *_args):
            self.statements[self.step].append(" ".join(statement.split())[:90])

        self._listener = _statement
        self._engine = svc.db.engine
        for name in STORE_METHODS:
            original = getattr(svc.kv, name)

            def counting(*args, _name=name, _original=original, **kwargs):
                # The client cache's version check is per process (once a second at
                # most), not per request: not counted.
                if not (args and args[0] == "clients:version"):
                    self.store_calls[self.step].append(f"{_name} {args[0] if args else ''}")
                return _original(*args, **kwargs)

            monkeypatch.setattr(svc.kv, name, counting)

    def run(self, step: str, call):
        self.step = step
        self.steps.append(step)
        try:
            return call()
        finally:
            self.step = "between steps"

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._listener)


@pytest.fixture
def meter(svc, monkeypatch):
    m = Meter(svc, monkeypatch)
    yield m
    m.close()


def test_sign_in_refresh_and_introspection_stay_within_their_round_trip_budget(
        app, svc, browser, rp, client_factory, user, meter):
    service = client_factory(grant_types=["client_credentials"])
    with app.app_context():  # clients are cached per worker: measure a warm cache
        for client in (rp, service):
            assert svc.extras["oidc_server"].query_client(client.client_id) is not None
    # The authorization request answers with the login page (idp/flows/login.py).
    page, verifier, _ = meter.run("authorize", lambda: browser.authorize(
        rp, scope="openid profile email offline_access"))
    assert page.status_code == 200
    response = meter.run("login", lambda: browser.submit(
        page, "email", {"email": user.email, "password": "correct horse battery staple"}))
    assert response.status_code == 302, response.status_code
    assert response.headers["Location"].startswith(rp.redirect_uri + "?")
    code = query_of(response.headers["Location"])["code"]
    tokens = meter.run("token (code)", lambda: browser.post("/token", headers=basic_auth(rp), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier})).json
    assert "refresh_token" in tokens
    info = meter.run("userinfo", lambda: browser.get(
        "/userinfo", headers=bearer(tokens["access_token"])))
    assert info.status_code == 200
    refreshed = meter.run("token (refresh)", lambda: browser.post(
        "/token", headers=basic_auth(rp),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}))
    assert refreshed.status_code == 200
    introspected = meter.run("introspection", lambda: browser.post(
        "/introspect", headers=basic_auth(rp), data={"token": tokens["access_token"]}))
    assert introspected.json["active"] is True
    granted = meter.run("token (client_credentials)", lambda: browser.post(
        "/token", headers=basic_auth(service), data={"grant_type": "client_credentials"}))
    assert granted.status_code == 200, granted.json

    over = []
    budgets = BUDGETS if svc.db.is_sqlite else POSTGRES_BUDGETS
    for step, (max_statements, max_store_calls) in budgets.items():
        statements, calls = meter.statements[step], meter.store_calls[step]
        if len(statements) > max_statements or len(calls) > max_store_calls:
            over.append(f"{step}: {len(statements)} statements (budget {max_statements}), "
                        f"{len(calls)} store calls (budget {max_store_calls})\n    "
                        + "\n    ".join(statements + calls))
    assert not over, "\n".join(over)
    # Every budget was checked against a step that ran (a renamed step cannot escape).
    assert sorted(meter.steps) == sorted(BUDGETS)


def test_protocol_reads_and_the_one_statement_grants_use_no_transaction(
        browser, rp, user, svc, meter):
    """userinfo and introspection read in autocommit: no BEGIN and no ROLLBACK round trip
    around their one SELECT; on PostgreSQL, so do a code's exchange and a refresh's
    rotation."""
    from tests.oidc.test_code_flow import exchange, sign_in

    result, verifier, _ = sign_in(browser, rp, user,
                                  scope="openid profile email offline_access")
    modes = []

    def autocommit_of(conn, *_args):
        dbapi = conn.connection.dbapi_connection
        # psycopg: .autocommit; sqlite3: no implicit BEGIN when isolation_level is None.
        modes.append((meter.step, getattr(dbapi, "autocommit", None) is True
                      or getattr(dbapi, "isolation_level", "") is None))

    event.listen(svc.db.engine, "before_cursor_execute", autocommit_of)
    try:
        exchanged = meter.run("token (code)", lambda: exchange(
            browser, rp, result["code"], verifier))
        assert exchanged.status_code == 200, exchanged.json
        tokens = exchanged.json
        assert meter.run("userinfo", lambda: browser.get(
            "/userinfo", headers=bearer(tokens["access_token"]))).status_code == 200
        assert meter.run("introspection", lambda: browser.post(
            "/introspect", headers=basic_auth(rp),
            data={"token": tokens["access_token"]})).json["active"] is True
        # On PostgreSQL the refresh rotates in one statement, its own transaction: no
        # BEGIN or COMMIT round trip either (idp/oidc/tokens.py, rotate_refresh_token).
        refreshed = meter.run("token (refresh)", lambda: browser.post(
            "/token", headers=basic_auth(rp),
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}))
        assert refreshed.status_code == 200, refreshed.json
    finally:
        event.remove(svc.db.engine, "before_cursor_execute", autocommit_of)
    protocol_reads = [mode for mode in modes if mode[0] in ("userinfo", "introspection")]
    assert protocol_reads == [("userinfo", True), ("introspection", True)]
    if not svc.db.is_sqlite:
        assert modes == [("token (code)", True), ("userinfo", True), ("introspection", True),
                         ("token (refresh)", True)]

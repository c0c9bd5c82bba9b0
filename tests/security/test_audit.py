"""The audit trail and secrets (issue 4): passwords, codes, tokens, client secrets and
session ids never reach the logs, the audit events, any table, the key-value store or an
error page; retention and purge (`idp audit purge`), listing (`idp audit list`)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging

import pytest
from click.testing import CliRunner
from flask import request_finished
from flask.cli import ScriptInfo
from sqlalchemy import select

import idp.identity.users as users_module
from idp.cli import main
from idp.persistence.models import AuditEvent, Base, utcnow
from idp.security.audit import record_event
from tests.conftest import basic_auth
from tests.oidc.test_code_flow import exchange
from tests.support import csrf_token, query_of

CANARY_PASSWORD = "canari-mdp 7f3a9c1e sur le lagon bleu"
CANARY_WRONG_PASSWORD = "canari-faux 51c0ffee sur la plage"
CANARY_WRONG_SECRET = "canari-secret-0ddba11-faux"
LOGGERS = ("", "idp", "werkzeug", "authlib", "sqlalchemy", "sqlalchemy.engine",
           "sqlalchemy.pool", "flask_wtf", "flask_login", "urllib3")


@pytest.fixture
def cli(app):
    def run(*args):
        result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
        assert result.exit_code == 0, result.output
        return result.output
    return run


@pytest.fixture
def responses(app):
    """Every response the app sends during the test, with its path."""
    seen: list[tuple[str, object]] = []

    def record(sender, response, **_):
        from flask import request
        seen.append((request.path, response))

    request_finished.connect(record, app)
    yield seen
    request_finished.disconnect(record, app)


def table_texts(app, svc):
    """(table, column, text) for every value of every table."""
    with app.app_context():
        with svc.db.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                for row in conn.execute(select(table)):
                    for column, value in row._mapping.items():
                        if value is None:
                            continue
                        text = json.dumps(value, default=str) if isinstance(value, (dict, list)) \
                            else str(value)
                        yield table.name, column, text


def store_texts(svc):
    """(key, value) for every entry of the key-value store (this run's prefix)."""
    kv = svc.kv
    if hasattr(kv, "_data"):
        for key, (value, _) in list(kv._data.items()):
            yield key, value.decode(errors="replace")
    else:
        for key in kv.client.scan_iter(match=kv.prefix + "*"):
            if kv.client.type(key) == b"string":
                value = kv.client.get(key) or b""
                yield key.decode(), value.decode(errors="replace")


def test_no_secret_reaches_logs_events_tables_store_or_error_pages(
        app, svc, browser, new_browser, user_factory, client_factory, caplog, responses,
        monkeypatch):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    user = user_factory(password=CANARY_PASSWORD,
                        terms_version=svc.settings.registration.terms_version)
    rp = client_factory(require_consent=False,
                        post_logout_redirect_uris=["https://demarche.example.org/bye"])
    canaries = {"password": CANARY_PASSWORD, "wrong password": CANARY_WRONG_PASSWORD,
                "wrong client secret": CANARY_WRONG_SECRET, "client secret": rp.client_secret}

    # Failed logins: a wrong password, an unknown account.
    browser.get("/login")
    assert browser.login(user.email, CANARY_WRONG_PASSWORD).status_code == 400
    assert browser.login("personne@example.org", CANARY_PASSWORD).status_code == 400

    # Sign in through an authorization request; code, tokens, userinfo, refresh.
    response, verifier, _ = browser.authorize(rp, scope="openid profile email offline_access")
    location = browser.follow_to_client(response, email=user.email, password=CANARY_PASSWORD)
    code = query_of(location)["code"]
    tokens = exchange(browser, rp, code, verifier).json
    assert "refresh_token" in tokens, tokens
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert browser.get("/userinfo", headers=bearer).status_code == 200
    refreshed = browser.post("/token", headers=basic_auth(rp), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).json
    assert "access_token" in refreshed, refreshed
    introspection = browser.post("/introspect", headers=basic_auth(rp),
                                 data={"token": refreshed["access_token"]})
    assert introspection.status_code == 200
    canaries.update({"code": code, "access token": tokens["access_token"],
                     "refresh token": tokens["refresh_token"], "id token": tokens["id_token"],
                     "refreshed access token": refreshed["access_token"],
                     "refreshed refresh token": refreshed["refresh_token"]})

    # Errors: code replay, refresh token reuse, a wrong client secret, a revoked token.
    assert exchange(browser, rp, code, verifier).status_code == 400
    assert browser.post("/token", headers=basic_auth(rp), data={
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"]}).status_code == 400
    wrong = type(rp)(rp.client_id, CANARY_WRONG_SECRET, rp.redirect_uri)
    assert browser.post("/token", headers=basic_auth(wrong), data={
        "grant_type": "refresh_token",
        "refresh_token": refreshed["refresh_token"]}).status_code == 401
    assert browser.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"],
        "client_id": rp.client_id, "client_secret": CANARY_WRONG_SECRET}).status_code == 401
    assert browser.get("/userinfo", headers=bearer).status_code == 401
    assert browser.get("/userinfo?access_token=" + tokens["access_token"]).status_code == 401

    # Re-authentication, then an unexpected error while the password is in the form.
    page = browser.get("/login/reauth?return_to=/compte/")
    assert browser.submit(page, "password", {"password": CANARY_PASSWORD}).status_code == 302
    other = new_browser()
    page = other.get("/login")

    def explode(*args, **kwargs):
        raise RuntimeError("la base ne répond pas")

    monkeypatch.setattr(users_module, "authenticate_password", explode)
    crashed = other.submit(page, "email", {"email": user.email, "password": CANARY_PASSWORD})
    assert crashed.status_code == 500
    monkeypatch.undo()

    # Logout.
    page = browser.get("/compte/")
    assert browser.post("/logout", data={"csrf_token": csrf_token(page.data),
                                         "confirm": "yes"}).status_code == 200

    # Every session id the app handed out is a canary too.
    for path, response in responses:
        for header in response.headers.getlist("Set-Cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            if name.endswith(svc.settings.session.cookie_name) and len(value) > 20:
                canaries[f"session id set by {path} #{len(canaries)}"] = value
    assert sum(k.startswith("session id") for k in canaries) >= 3

    # -- the search ------------------------------------------------------------------
    assert len(caplog.records) > 50  # the loggers were really captured
    log_text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for what, value in canaries.items():
        assert value not in log_text, f"{what} in the logs"
    rows = list(table_texts(app, svc))
    assert any(table == "audit_events" for table, _, _ in rows)
    for table, column, text in rows:
        for what, value in canaries.items():
            assert value not in text, f"{what} in {table}.{column}"
    for key, text in store_texts(svc):
        for what, value in canaries.items():
            assert value not in key and value not in text, f"{what} in the store ({key})"
    # Error pages and every HTML page: nothing of it either.
    for path, response in responses:
        if response.status_code >= 400 or response.content_type.startswith("text/html"):
            body = response.get_data(as_text=True)
            for what, value in canaries.items():
                assert value not in body, f"{what} in the {response.status_code} page of {path}"


def test_secret_details_are_dropped_from_events(app, svc):
    with app.app_context():
        record_event(svc.db.session, "test.event", user_id="u", details={
            "password": "p", "Client_Secret": "s", "refresh_token": "r", "code": "c",
            "reason": "kept"})
        svc.db.session.commit()
        event = svc.db.session.scalar(select(AuditEvent).where(AuditEvent.type == "test.event"))
        assert event.details == {"reason": "kept"}


def _event_at(app, svc, type_, days_ago, **kw):
    with app.app_context():
        event = record_event(svc.db.session, type_, **kw)
        event.created_at = utcnow() - dt.timedelta(days=days_ago)
        svc.db.session.commit()
        return event.id


def _event_types(app, svc):
    with app.app_context():
        return sorted(svc.db.session.scalars(select(AuditEvent.type)))


def test_retention_defaults_to_twelve_months_and_purge_keeps_younger_events(app, svc, cli):
    assert svc.settings.audit.retention_days == 365
    _event_at(app, svc, "old.event", 400)
    _event_at(app, svc, "recent.event", 300)
    output = cli("audit", "purge")
    assert "removed 1 event" in output
    assert _event_types(app, svc) == ["admin.audit_purged", "recent.event"]
    with app.app_context():
        purge = svc.db.session.scalar(select(AuditEvent).where(
            AuditEvent.type == "admin.audit_purged"))
        assert purge.details == {"via": "cli", "operator": getpass.getuser(),
                                 "retention_days": 365, "removed": 1}


def test_purge_follows_the_configured_retention(make_app, app, svc):
    short = make_app(audit={"retention_days": 30})
    _event_at(app, svc, "a.event", 40)
    _event_at(app, svc, "b.event", 10)
    result = CliRunner().invoke(main, ["audit", "purge"], obj=ScriptInfo(create_app=lambda: short))
    assert result.exit_code == 0, result.output
    assert _event_types(app, svc) == ["admin.audit_purged", "b.event"]
    result = CliRunner().invoke(main, ["audit", "purge", "--days", "5"],
                                obj=ScriptInfo(create_app=lambda: short))
    assert "removed 1 event" in result.output
    assert "b.event" not in _event_types(app, svc)


def test_audit_list_filters(app, svc, cli, user_factory):
    user = user_factory(email="suivi@example.org")
    _event_at(app, svc, "login.success", 2, user_id=user.id)
    _event_at(app, svc, "login.failure", 1, outcome="failure", user_id=user.id)
    _event_at(app, svc, "token.issued", 0, client_id="demarche", details={"scope": "openid"})
    everything = [json.loads(line) for line in cli("audit", "list", "--json").splitlines()]
    assert [e["type"] for e in everything] == ["token.issued", "login.failure", "login.success"]
    assert everything[0]["details"] == {"scope": "openid"}
    by_type = cli("audit", "list", "--type", "login.")
    assert "login.success" in by_type and "token.issued" not in by_type
    by_email = cli("audit", "list", "--user", "Suivi@Example.org", "--json").splitlines()
    assert len(by_email) == 2
    assert len(cli("audit", "list", "--user", user.id, "--json").splitlines()) == 2
    assert "token.issued" in cli("audit", "list", "--client", "demarche")
    since = (utcnow() - dt.timedelta(days=1, hours=12)).strftime("%Y-%m-%dT%H:%M:%S")
    recent = cli("audit", "list", "--since", since, "--json").splitlines()
    assert {json.loads(line)["type"] for line in recent} == {"login.failure", "token.issued"}
    assert len(cli("audit", "list", "--limit", "1", "--json").splitlines()) == 1

"""The `idp` command line: clients, users, keys, database; same configuration as the server."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from joserfc import jws

from idp.oidc.keys import ACTIVATION_DELAY
from idp.admin.clients import new_client_id
from idp.cli import main
from idp.persistence.models import Client


@pytest.fixture
def cli(app):
    """Run `idp ARGS` against the test application (same settings as the test server)."""
    def run(*args, expect_ok=True):
        result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
        if expect_ok:
            assert result.exit_code == 0, result.output
        return result
    return run


def test_clients_create_json_and_use_the_secret(cli, browser):
    result = cli("clients", "create", "--name", "Bourse", "--redirect-uri", "https://b.example/cb",
                 "--redirect-uri", "https://b.example/cb2", "--post-logout-redirect-uri",
                 "https://b.example/", "--scope", "openid", "--scope", "email", "--no-consent",
                 "--json")
    data = json.loads(result.output)
    assert data["client_id"] and data["client_secret"]
    assert data["redirect_uris"] == ["https://b.example/cb", "https://b.example/cb2"]
    assert data["require_consent"] is False and data["scope"] == "openid email"
    import base64
    auth = base64.b64encode(f"{data['client_id']}:{data['client_secret']}".encode()).decode()
    # The secret works at the token endpoint (the grant type is what is refused).
    response = browser.post("/token", headers={"Authorization": f"Basic {auth}"},
                            data={"grant_type": "client_credentials"})
    assert response.json["error"] == "unauthorized_client"


def test_public_client_has_no_secret_and_secret_is_stored_hashed(cli, svc, app):
    data = json.loads(cli("clients", "create", "--name", "SPA", "--redirect-uri",
                          "https://spa.example/cb", "--public", "--json").output)
    assert data["client_secret"] is None and data["token_endpoint_auth_method"] == "none"
    confidential = json.loads(cli("clients", "create", "--name", "C", "--redirect-uri",
                                  "https://c.example/cb", "--json").output)
    with app.app_context():
        stored = svc.db.session.get(Client, confidential["client_id"])
        assert confidential["client_secret"] not in (stored.client_secret_hash or "")


def test_clients_list_show_rotate_delete(cli, browser, svc):
    data = json.loads(cli("clients", "create", "--name", "Cantine", "--redirect-uri",
                          "https://c.example/cb", "--grant-type", "client_credentials",
                          "--scope", "profile", "--json").output)
    client_id = data["client_id"]
    assert client_id in cli("clients", "list").output
    assert json.loads(cli("clients", "show", client_id).output)["name"] == "Cantine"
    rotated = json.loads(cli("clients", "rotate-secret", client_id, "--json").output)
    import base64

    def token_with(secret):
        auth = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return browser.post("/token", headers={"Authorization": f"Basic {auth}"},
                            data={"grant_type": "client_credentials"})
    assert token_with(data["client_secret"]).status_code == 401
    assert token_with(rotated["client_secret"]).status_code == 200
    cli("clients", "delete", client_id)
    # The CLI is another process: the server sees the change when its cached entry
    # expires (persistence/client_cache.py), here at once.
    svc.clients.forget()
    assert token_with(rotated["client_secret"]).status_code == 401
    assert cli("clients", "show", client_id, expect_ok=False).exit_code != 0


def test_generated_client_ids_never_read_as_a_cli_option():
    # One random id in 64 started with "-" and `idp clients show ID` took it for an option.
    ids = {new_client_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert not any(client_id.startswith("-") for client_id in ids)
    assert all(len(client_id) == 22 for client_id in ids)


@pytest.mark.parametrize("args", [
    ["--redirect-uri", "http://evil.example/cb"],          # http outside localhost
    ["--redirect-uri", "https://x.example/cb#frag"],       # fragment
    ["--public", "--grant-type", "client_credentials"],    # public + client_credentials
    ["--auth-method", "private_key_jwt", "--redirect-uri", "https://x.example/cb"],  # no jwks
    ["--redirect-uri", "https://x.example/cb", "--scope", "everything"],
])
def test_clients_create_refuses_bad_registrations(cli, args):
    result = cli("clients", "create", "--name", "Bad", *args, expect_ok=False)
    assert result.exit_code != 0 and "Error" in result.output


@pytest.mark.parametrize("home_url", [
    "http://demarche.example/",            # plain http outside the loopback
    "javascript:alert(1)",                 # not a web page
    "https://user:pass@demarche.example/",  # credentials in the link
    "https://",                            # no host
])
def test_clients_create_refuses_a_home_url_citizens_could_be_misled_by(cli, app, svc,
                                                                      home_url):
    """Review 2026-12, finding 11: the home page is shown to citizens as a link; the CLI
    stored any value."""
    result = cli("clients", "create", "--name", "Bad", "--redirect-uri",
                 "https://x.example/cb", "--home-url", home_url, expect_ok=False)
    assert result.exit_code != 0 and "home URL" in result.output
    with app.app_context():
        assert svc.db.session.query(Client).count() == 0


@pytest.mark.parametrize("home_url", ["https://demarche.example/", "http://localhost:8080/",
                                      "http://127.0.0.1/", "http://[::1]:8000/"])
def test_clients_create_accepts_https_and_loopback_home_urls(cli, home_url):
    cli("clients", "create", "--name", "Good", "--redirect-uri", "https://x.example/cb",
        "--home-url", home_url)


def test_users_create_then_login(cli, browser):
    result = cli("users", "create", "--email", "Paul@Example.org", "--password",
                 "un mot de passe solide", "--given-name", "Paul", "--family-name", "Durand",
                 "--phone", "06 12 34 56 78")
    assert json.loads(result.output)["email"] == "paul@example.org"
    response = browser.login("paul@example.org", "un mot de passe solide")
    assert response.status_code == 302
    duplicate = cli("users", "create", "--email", "paul@example.org", "--password", "x" * 12,
                    "--given-name", "P", "--family-name", "D", expect_ok=False)
    assert duplicate.exit_code != 0


def test_keys_rotate_keeps_old_keys_and_prune_retires_them(cli, svc, app, browser, rp, user):
    from tests.oidc.test_code_flow import exchange, sign_in

    result, verifier, _ = sign_in(browser, rp, user)
    old_id_token = exchange(browser, rp, result["code"], verifier).json["id_token"]
    old_kid = jws.extract_compact(old_id_token.encode()).protected["kid"]
    before = {k["kid"] for k in browser.get("/jwks.json").json["keys"]}
    cli("keys", "rotate")
    svc.keys._last_check = 0  # do not wait for the periodic reload in the test
    after = {k["kid"] for k in browser.get("/jwks.json").json["keys"]}
    assert before < after and len(after - before) == 2
    # Published at once, but not signing until every instance has had time to read it.
    result, verifier, _ = sign_in(browser, rp, user)
    still_old = exchange(browser, rp, result["code"], verifier).json["id_token"]
    assert jws.extract_compact(still_old.encode()).protected["kid"] == old_kid
    for path in svc.keys.directory.glob("*.json"):
        data = json.loads(path.read_text())
        # The new keys old enough to sign, the old ones older still.
        data["created_at"] -= ACTIVATION_DELAY + (1 if path.stem not in before else 100)
        path.write_text(json.dumps(data))
    svc.keys._last_check = 0
    svc.keys._loaded_mtime = None
    result, verifier, _ = sign_in(browser, rp, user)
    new_id_token = exchange(browser, rp, result["code"], verifier).json["id_token"]
    assert jws.extract_compact(new_id_token.encode()).protected["kid"] != old_kid
    # Backdate the old keys, then prune: they leave the JWKS; the new ones stay.
    for path in svc.keys.directory.glob("*.json"):
        data = json.loads(path.read_text())
        if path.stem in before:
            data["created_at"] = time.time() - 400 * 86400
            path.write_text(json.dumps(data))
    cli("keys", "prune", "--max-age-days", "180")
    svc.keys._last_check = 0
    remaining = {k["kid"] for k in browser.get("/jwks.json").json["keys"]}
    assert remaining == after - before
    assert "RS256" in cli("keys", "list").output


def test_db_current_reports_head(cli):
    output = cli("db", "current").output
    current, head = output.split("current: ")[1].split("  head: ")
    assert current.strip() == head.strip()


# -- initial access tokens and disabled clients -------------------------------------------
def test_registration_tokens_create_list_revoke(cli, app, svc, browser):
    import getpass

    from sqlalchemy import select

    from idp.admin.initial_tokens import token_digest
    from idp.persistence.models import AuditEvent, InitialAccessToken

    data = json.loads(cli("registration-tokens", "create", "--label", "Portail", "--days", "2",
                          "--max-uses", "1", "--json").output)
    assert data["token"] and data["state"] == "active" and data["max_uses"] == 1
    assert data["registration_endpoint"].endswith("/register")
    with app.app_context():
        row = svc.db.session.get(InitialAccessToken, data["id"])
        assert row.token_hash == token_digest(data["token"]) and data["token"] not in row.token_hash
        event = svc.db.session.scalar(select(AuditEvent).where(
            AuditEvent.type == "admin.initial_access_token_created"))
        assert event.details["via"] == "cli" and event.details["operator"] == getpass.getuser()
        assert data["token"] not in json.dumps(event.details)
    listed = json.loads(cli("registration-tokens", "list", "--json").output)
    assert [t["id"] for t in listed] == [data["id"]] and "token" not in listed[0]
    assert data["token"] not in cli("registration-tokens", "list").output

    metadata = {"client_name": "Portail", "redirect_uris": ["https://portail.example/cb"]}
    auth = {"Authorization": f"Bearer {data['token']}"}
    assert browser.post("/register", json=metadata, headers=auth).status_code == 201
    # Used up: out of the default list, in --all.
    assert json.loads(cli("registration-tokens", "list", "--json").output) == []
    (used,) = json.loads(cli("registration-tokens", "list", "--all", "--json").output)
    assert used["state"] == "used_up" and used["uses"] == 1

    other = json.loads(cli("registration-tokens", "create", "--label", "Autre", "--json").output)
    assert "revoked" in cli("registration-tokens", "revoke", other["id"]).output
    assert browser.post("/register", json=metadata, headers={
        "Authorization": f"Bearer {other['token']}"}).status_code == 401
    assert cli("registration-tokens", "revoke", "inconnu", expect_ok=False).exit_code != 0
    too_long = cli("registration-tokens", "create", "--label", "x", "--days", "91",
                   expect_ok=False)
    assert too_long.exit_code != 0 and "90 days" in too_long.output


def test_clients_disable_and_enable(cli, app, svc, browser, rp):
    import base64

    from idp.persistence.models import Client

    auth = {"Authorization": "Basic " + base64.b64encode(
        f"{rp.client_id}:{rp.client_secret}".encode()).decode()}
    form = {"grant_type": "refresh_token", "refresh_token": "x"}
    # Known to this process's client cache, which the command updates.
    assert browser.post("/token", data=form, headers=auth).json["error"] == "invalid_grant"
    cli("clients", "disable", rp.client_id)
    with app.app_context():
        assert svc.db.session.get(Client, rp.client_id).disabled
    assert browser.post("/token", data=form, headers=auth).json["error"] == "invalid_client"
    cli("clients", "enable", rp.client_id)
    assert browser.post("/token", data=form, headers=auth).json["error"] == "invalid_grant"
    assert cli("clients", "disable", "inconnu", expect_ok=False).exit_code != 0

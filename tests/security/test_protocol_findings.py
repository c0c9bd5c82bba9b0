"""The protocol-side findings of the 2026-12 security review (docs/security.md), each
reproduced as the reviewer did it: every test here failed before its fix."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.persistence.flows import KEY_PREFIX, read_flow
try:
    from idp.security.passwords import HashingBusy, PasswordService
except ImportError:
    HashingBusy = PasswordService = None
from tests.conftest import ISSUER, basic_auth
from tests.support import query_of

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def authorization_query(rp, **extra):
    return {"response_type": "code", "client_id": rp.client_id,
            "redirect_uri": rp.redirect_uri, "scope": "openid", "state": "s",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256", **extra}


def stored_flows(svc) -> list:
    keys = svc.kv.client.scan_iter(match=svc.kv.prefix + KEY_PREFIX + "*") \
        if hasattr(svc.kv, "client") else [k for k in svc.kv._data if k.startswith(KEY_PREFIX)]
    prefix_length = len(getattr(svc.kv, "prefix", "")) + len(KEY_PREFIX)
    ids = [(k.decode() if isinstance(k, bytes) else k)[prefix_length:] for k in keys]
    return [read_flow(svc.kv, flow_id) for flow_id in ids]


# -- 1. Anyone could fill Redis through /authorize -------------------------------------
def test_an_authorization_request_keeps_only_its_known_parameters(browser, svc, rp):
    response = browser.client.post("/authorize", data=authorization_query(
        rp, filler="x" * 20_000, other="y"))
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    (flow,) = [f for f in stored_flows(svc) if f.type == "authorize"]
    assert set(flow.data["params"]) == set(authorization_query(rp))
    assert len(json.dumps(flow.data)) < 2000


def test_an_authorization_body_beyond_the_limit_is_refused_and_nothing_is_stored(
        browser, svc, rp):
    response = browser.client.post("/authorize", data=authorization_query(
        rp, filler="x" * 1_000_000))
    assert response.status_code == 413
    assert stored_flows(svc) == []


@pytest.mark.parametrize("params", [
    {"state": "s" * 1001},
    {"login_hint": "h" * 321},
    {"claims": json.dumps({"id_token": {f"c{i}": None for i in range(200)}})},
    {"nonce": "n" * 500, "state": "s" * 1000, "id_token_hint": "t" * 4000,
     "claims": "{" + " " * 1990 + "}", "scope": "openid " * 100},
])
def test_an_oversized_authorization_parameter_is_invalid_request(browser, svc, rp, params):
    response = browser.get("/authorize", query_string=authorization_query(rp, **params))
    assert response.status_code == 400 and b"invalid_request" in response.data
    assert stored_flows(svc) == []


def test_flows_are_started_at_a_bounded_rate_per_address(make_app, client_factory):
    app = make_app(rate_limits={"flows_per_ip": "3/minute"})
    client = app.test_client()
    answers = [client.get("/login").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    # A flow already started goes on: only new ones are counted.
    assert client.get("/login?flow=unknown").status_code in (200, 302)


# -- 5. private_key_jwt assertions replayable after an hour ---------------------------
def assertion(key, client_id, *, lifetime=60, iat=True, jti=None):
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": f"{ISSUER}/token",
              "exp": now + lifetime, "jti": jti or secrets.token_urlsafe(12)}
    if iat:
        claims["iat"] = now
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


@pytest.fixture
def jwt_client(client_factory):
    key = ECKey.generate_key("P-256", auto_kid=True)
    client = client_factory(auth_method="private_key_jwt",
                            jwks={"keys": [key.as_dict(private=False)]},
                            grant_types=["client_credentials"], scopes=["profile"])
    return client, key


def with_assertion(browser, client_id, value):
    return browser.post("/token", data={
        "grant_type": "client_credentials", "client_id": client_id,
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": value})


def test_a_long_lived_or_undated_assertion_is_refused(browser, jwt_client):
    client, key = jwt_client
    month = with_assertion(browser, client.client_id,
                           assertion(key, client.client_id, lifetime=30 * 86400))
    assert month.status_code == 401 and month.json["error"] == "invalid_client"
    undated = with_assertion(browser, client.client_id,
                             assertion(key, client.client_id, iat=False))
    assert undated.status_code == 401 and undated.json["error"] == "invalid_client"
    assert with_assertion(browser, client.client_id,
                          assertion(key, client.client_id, lifetime=290)).status_code == 200


def test_an_assertions_one_use_marker_outlives_it(browser, svc, jwt_client):
    client, key = jwt_client
    value = assertion(key, client.client_id, lifetime=290, jti="once")
    assert with_assertion(browser, client.client_id, value).status_code == 200
    assert svc.kv.ttl(f"assertion:{client.client_id}:once") >= 290
    assert with_assertion(browser, client.client_id, value).status_code == 401


# -- 6. Unauthenticated 500s ----------------------------------------------------------
@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
@pytest.mark.parametrize("header", [
    "Basic null", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    "Basic " + base64.b64encode(b"no-colon").decode(), "Basic ",
])
def test_a_malformed_basic_header_is_invalid_client(browser, path, header):
    response = browser.post(path, headers={"Authorization": header},
                            data={"grant_type": "client_credentials", "token": "x"})
    assert response.status_code == 401 and response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_an_assertion_naming_a_client_with_a_secret_is_invalid_client(browser,
                                                                        client_factory):
    service = client_factory(grant_types=["client_credentials"], scopes=["profile"])
    key = ECKey.generate_key("P-256", auto_kid=True)
    response = with_assertion(browser, service.client_id,
                              assertion(key, service.client_id))
    assert response.status_code == 401 and response.json["error"] == "invalid_client"


def test_a_deeply_nested_claims_parameter_is_invalid_request(browser, rp):
    nested = "[" * 990 + "]" * 990
    response = browser.get("/authorize", query_string=authorization_query(rp, claims=nested))
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


@pytest.mark.parametrize("return_to", ["/compte/\r\nSet-Cookie: x=y", "/compte/\x7f",
                                       "/" + "a" * 2001])
def test_a_return_to_a_location_cannot_carry_is_dropped(browser, user, return_to):
    page = browser.get("/login", query_string={"return_to": return_to})
    done = browser.submit(page, "email", {"email": user.email,
                                          "password": "correct horse battery staple"})
    assert done.status_code == 302 and done.headers["Location"] == "/compte/"


# -- 7. Forged log lines -------------------------------------------------------------
def test_a_path_with_line_breaks_is_logged_on_one_line(browser, caplog):
    caplog.set_level(logging.WARNING)
    browser.client.post("/compte/profil%0d%0aCRITICAL forged line",
                        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    messages = [r.getMessage() for r in caplog.records if "cross-site" in r.getMessage()]
    assert messages and all("\n" not in m and "\r" not in m for m in messages)
    assert any("\\r\\nCRITICAL" in m for m in messages)


# -- 11. Smaller points ---------------------------------------------------------------
def test_a_confidential_client_needs_pkce_unless_it_opted_out(browser, client_factory):
    strict = client_factory(require_consent=False)
    query = authorization_query(strict)
    del query["code_challenge"], query["code_challenge_method"]
    refused = browser.get("/authorize", query_string=query)
    assert query_of(refused.headers["Location"])["error"] == "invalid_request"
    legacy = client_factory(require_consent=False, require_pkce=False,
                            redirect_uri="https://legacy.example.org/cb")
    query = authorization_query(legacy)
    del query["code_challenge"], query["code_challenge_method"]
    answer = browser.get("/authorize", query_string=query)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")


def test_basic_credentials_and_a_body_client_id_must_agree(browser, client_factory):
    service = client_factory(grant_types=["client_credentials"], scopes=["profile"])
    other = client_factory(grant_types=["client_credentials"], scopes=["profile"])
    response = browser.post("/token", headers=basic_auth(service), data={
        "grant_type": "client_credentials", "client_id": other.client_id})
    assert response.status_code == 400 and response.json["error"] == "invalid_request"
    same = browser.post("/token", headers=basic_auth(service), data={
        "grant_type": "client_credentials", "client_id": service.client_id})
    assert same.status_code == 200


def test_password_hashes_run_a_few_at_a_time():
    service = PasswordService(1024, 1, 1, max_concurrent=1, wait=0.05)
    stored = service.hash("un mot de passe")
    holding, release = threading.Event(), threading.Event()

    def hold():
        with service.slot():
            holding.set()
            release.wait(5)
    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    try:
        with pytest.raises(HashingBusy):
            service.verify(stored, "un mot de passe")
    finally:
        release.set()
        thread.join()
    assert service.verify(stored, "un mot de passe") is True


def test_a_login_that_finds_every_hashing_slot_taken_gets_a_503_page(make_app, user_factory):
    app = make_app(passwords={"max_concurrent_hashes": 1, "hash_wait": 0.05})
    client = app.test_client()
    page = client.get("/login")
    token = page.get_data(as_text=True).split('name="csrf_token" type="hidden" value="')[1]
    token = token.split('"')[0]
    action = page.get_data(as_text=True).split('action="')[1].split('"')[0]
    with app.extensions["idp"].passwords.slot():
        busy = client.post(action.replace("&amp;", "&"), data={
            "csrf_token": token, "email": "someone@example.org", "password": "x" * 12})
    assert busy.status_code == 503 and busy.headers["Retry-After"]
    assert "très sollicité".encode() in busy.data


def test_the_access_log_escapes_the_path_and_drops_the_query(make_app, caplog):
    app = make_app(server={"access_log": True})
    caplog.set_level(logging.INFO, logger="idp.access")
    app.test_client().get("/x%0d%0aCRITICAL forged?code=secret-code")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "idp.access"]
    assert "\n" not in line and "\\r\\nCRITICAL" in line
    assert "secret-code" not in line and line.endswith("ms") and " 404 " in line


def test_a_login_started_by_anyone_stores_bounded_values(browser, svc):
    browser.get("/login", query_string={"client_id": "c" * 5000, "acr": "a" * 5000,
                                        "login_hint": "h" * 5000})
    (flow,) = stored_flows(svc)
    assert len(json.dumps(flow.data)) < 600

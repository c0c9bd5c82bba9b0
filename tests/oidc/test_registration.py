"""Dynamic client registration (RFC 7591) and management (RFC 7592): open only with an
initial access token issued by an administrator, the console's rules for metadata,
management with the registration access token, errors in JSON."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import select, update

from idp.admin import initial_tokens
from idp.persistence.models import AuditEvent, Client, InitialAccessToken
from tests.conftest import ISSUER
from tests.oidc.test_code_flow import exchange
from tests.support import query_of

APP = {"client_name": "Portail des aides", "redirect_uris": ["https://aides.example.org/cb"],
       "post_logout_redirect_uris": ["https://aides.example.org/"],
       "client_uri": "https://aides.example.org/", "scope": "openid profile email",
       "grant_types": ["authorization_code", "refresh_token"]}


@pytest.fixture
def issue(app, svc):
    """An initial access token, as an administrator would issue it; returns its value."""
    def make(ttl=3600, max_uses=None, label="Portail des aides"):
        with app.app_context():
            _token, value = initial_tokens.issue(svc.db.session, label=label, ttl=ttl,
                                                 max_uses=max_uses)
            svc.db.session.commit()
            return value
    return make


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


def register(browser, token: str | None, metadata=None, **kw):
    headers = bearer(token) if token else {}
    return browser.post("/register", json=APP if metadata is None else metadata,
                        headers=headers, **kw)


def load_client(app, svc, client_id):
    with app.app_context():
        client = svc.db.session.get(Client, client_id)
        if client is not None:
            svc.db.session.expunge(client)
        return client


def events(app, svc, type_):
    with app.app_context():
        found = list(svc.db.session.scalars(select(AuditEvent).where(AuditEvent.type == type_)
                                            .order_by(AuditEvent.created_at)))
        svc.db.session.expunge_all()
        return found


def test_discovery_advertises_the_registration_endpoint(browser):
    assert browser.get("/.well-known/openid-configuration").json["registration_endpoint"] == \
        f"{ISSUER}/register"


def test_register_with_an_initial_access_token_then_sign_in(app, svc, browser, issue, user):
    token = issue()
    response = register(browser, token)
    assert response.status_code == 201, response.json
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["client_secret"] and body["client_secret_expires_at"] == 0
    assert body["registration_access_token"]
    assert body["registration_client_uri"] == f"{ISSUER}/register/{body['client_id']}"
    assert body["client_name"] == "Portail des aides"
    assert body["redirect_uris"] == APP["redirect_uris"]
    assert body["response_types"] == ["code"] and body["subject_type"] == "public"
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    client = load_client(app, svc, body["client_id"])
    # Stored hashed, third-party (consent), out of the catalogue until an admin decides.
    assert body["client_secret"] not in (client.client_secret_hash or "")
    assert body["registration_access_token"] not in (client.registration_token_hash or "")
    assert client.require_consent and not client.listed and client.require_pkce
    assert client.home_url == "https://aides.example.org/"
    (event,) = events(app, svc, "client.registered")
    assert event.client_id == body["client_id"]
    assert event.details["initial_access_token_id"] == client.initial_access_token_id
    assert body["client_secret"] not in json.dumps(event.details)

    # The new client works: a user signs in to it and its secret gets tokens.
    from tests.support import RegisteredClient
    rp = RegisteredClient(body["client_id"], body["client_secret"], APP["redirect_uris"][0])
    authorization, verifier, _ = browser.authorize(rp)
    location = browser.follow_to_client(authorization, email=user.email)
    tokens = exchange(browser, rp, query_of(location)["code"], verifier)
    assert tokens.status_code == 200 and tokens.json["id_token"]


def test_defaults_follow_rfc_7591(app, svc, browser, issue):
    body = register(browser, issue(), {"client_name": "Minimal",
                                      "redirect_uris": ["https://m.example/cb"]}).json
    assert body["grant_types"] == ["authorization_code"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert "offline_access" in body["scope"].split()


def test_a_public_client_gets_no_secret(app, svc, browser, issue):
    response = register(browser, issue(), {**APP, "token_endpoint_auth_method": "none"})
    assert response.status_code == 201, response.json
    assert "client_secret" not in response.json
    assert "client_secret_expires_at" not in response.json
    client = load_client(app, svc, response.json["client_id"])
    assert client.is_public and client.client_secret_hash is None


def test_private_key_jwt_needs_public_keys(app, svc, browser, issue):
    key = ECKey.generate_key("P-256")
    public = {"keys": [key.as_dict(private=False)]}
    no_keys = register(browser, issue(), {**APP, "token_endpoint_auth_method": "private_key_jwt"})
    assert no_keys.status_code == 400 and no_keys.json["error"] == "invalid_client_metadata"
    private = register(browser, issue(), {**APP, "token_endpoint_auth_method": "private_key_jwt",
                                         "jwks": {"keys": [key.as_dict(private=True)]}})
    assert private.status_code == 400 and private.json["error"] == "invalid_client_metadata"
    ok = register(browser, issue(), {**APP, "token_endpoint_auth_method": "private_key_jwt",
                                    "jwks": public})
    assert ok.status_code == 201, ok.json
    assert "client_secret" not in ok.json and ok.json["jwks"] == public


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"},
                                     {"Authorization": "Basic Zm9vOmJhcg=="}])
def test_registration_needs_a_valid_initial_access_token(app, svc, browser, headers):
    response = browser.post("/register", json=APP, headers=headers)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    with app.app_context():
        assert svc.db.session.scalar(select(Client)) is None


def test_an_expired_token_is_refused(app, svc, browser, issue):
    token = issue()
    with app.app_context():
        svc.db.session.execute(update(InitialAccessToken).values(
            expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
        svc.db.session.commit()
    response = register(browser, token)
    assert response.status_code == 401 and response.json["error"] == "invalid_token"
    (event,) = events(app, svc, "registration.error")
    assert event.details["reason"] == "expired" and event.client_id is None


def test_a_revoked_token_is_refused(app, svc, browser, issue):
    token = issue()
    with app.app_context():
        (row,) = initial_tokens.list_tokens(svc.db.session)
        assert initial_tokens.revoke(svc.db.session, row)
        svc.db.session.commit()
    assert register(browser, token).status_code == 401
    assert events(app, svc, "registration.error")[0].details["reason"] == "revoked"


def test_a_used_up_token_is_refused_and_failures_do_not_use_it(app, svc, browser, issue):
    token = issue(max_uses=1)
    bad = register(browser, token, {**APP, "redirect_uris": ["http://aides.example.org/cb"]})
    assert bad.status_code == 400 and bad.json["error"] == "invalid_redirect_uri"
    assert register(browser, token).status_code == 201  # the failure did not count
    again = register(browser, token)
    assert again.status_code == 401 and again.json["error"] == "invalid_token"
    with app.app_context():
        (row,) = initial_tokens.list_tokens(svc.db.session, include_inactive=True)
        assert row.uses == 1 and initial_tokens.state(row) == "used_up"
    assert [e.details.get("reason") for e in events(app, svc, "registration.error")] == \
        [None, "used_up"]


def test_a_token_for_several_registrations(app, svc, browser, issue):
    token = issue(max_uses=3)
    ids = {register(browser, token).json["client_id"] for _ in range(3)}
    assert len(ids) == 3
    assert register(browser, token).status_code == 401


def test_concurrent_registrations_cannot_both_spend_a_last_use(app, svc, issue):
    token = issue(max_uses=1)
    statuses = []
    barrier = threading.Barrier(2)

    def attempt():
        client = app.test_client()
        barrier.wait()
        statuses.append(client.post("/register", json=APP, headers=bearer(token)).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 401]


@pytest.mark.parametrize("metadata, error", [
    ({**APP, "redirect_uris": ["http://aides.example.org/cb"]}, "invalid_redirect_uri"),
    ({**APP, "redirect_uris": ["https://aides.example.org/cb#frag"]}, "invalid_redirect_uri"),
    ({**APP, "redirect_uris": ["https://aides.example.org/cb#"]}, "invalid_redirect_uri"),
    ({**APP, "redirect_uris": ["https://*.example.org/cb"]}, "invalid_redirect_uri"),
    ({**APP, "redirect_uris": ["https://aides.example.org/*"]}, "invalid_redirect_uri"),
    ({**APP, "redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
    ({**APP, "redirect_uris": ["https://[::1/cb"]}, "invalid_redirect_uri"),
    ({**APP, "redirect_uris": ["https://a.example/c b"]}, "invalid_redirect_uri"),
    ({**APP, "redirect_uris": "https://aides.example.org/cb"}, "invalid_redirect_uri"),
    ({**APP, "redirect_uris": []}, "invalid_redirect_uri"),
    ({**APP, "redirect_uris": [f"https://a.example/{i}" for i in range(21)]},
     "invalid_redirect_uri"),
    ({**APP, "post_logout_redirect_uris": ["http://aides.example.org/"]}, "invalid_redirect_uri"),
    ({**APP, "grant_types": ["implicit"]}, "invalid_client_metadata"),
    ({**APP, "grant_types": ["password"]}, "invalid_client_metadata"),
    ({**APP, "grant_types": "authorization_code"}, "invalid_client_metadata"),
    ({**APP, "token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata"),
    ({**APP, "token_endpoint_auth_method": "tls_client_auth"}, "invalid_client_metadata"),
    ({**APP, "scope": "openid admin"}, "invalid_client_metadata"),
    ({**APP, "scope": "openid introspection"}, "invalid_client_metadata"),
    ({**APP, "scope": 42}, "invalid_client_metadata"),
    ({**APP, "response_types": ["token"]}, "invalid_client_metadata"),
    ({**APP, "response_types": ["code"], "grant_types": ["client_credentials"]},
     "invalid_client_metadata"),
    ({**APP, "client_name": ""}, "invalid_client_metadata"),
    ({**APP, "client_name": 12}, "invalid_client_metadata"),
    ({**APP, "client_name": "x" * 201}, "invalid_client_metadata"),
    ({**APP, "client_name": "a\x00b"}, "invalid_client_metadata"),
    ({k: v for k, v in APP.items() if k != "client_name"}, "invalid_client_metadata"),
    ({**APP, "client_uri": "http://aides.example.org/"}, "invalid_client_metadata"),
    ({**APP, "client_uri": "https://moi:secret@aides.example.org/"}, "invalid_client_metadata"),
    ({**APP, "backchannel_logout_uri": "http://aides.example.org/bc"},
     "invalid_client_metadata"),
    ({**APP, "frontchannel_logout_uri": "https://aides.example.org/fc#x"},
     "invalid_client_metadata"),
    ({**APP, "backchannel_logout_session_required": "yes"}, "invalid_client_metadata"),
    ({**APP, "subject_type": "secret"}, "invalid_client_metadata"),
    ({**APP, "id_token_signed_response_alg": "none"}, "invalid_client_metadata"),
    ({**APP, "jwks_uri": "https://aides.example.org/jwks"}, "invalid_client_metadata"),
    ({**APP, "sector_identifier_uri": "https://aides.example.org/s"}, "invalid_client_metadata"),
    ({**APP, "userinfo_encrypted_response_alg": "RSA-OAEP"}, "invalid_client_metadata"),
    ({**APP, "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none",
      "response_types": []}, "invalid_client_metadata"),
    (["not", "an", "object"], "invalid_client_metadata"),
])
def test_invalid_metadata_is_refused_with_the_rfc_7591_codes(app, svc, browser, issue,
                                                             metadata, error):
    response = register(browser, issue(), metadata)
    assert response.status_code == 400, response.json
    assert response.json["error"] == error
    assert response.json.get("error_description")
    with app.app_context():
        assert svc.db.session.scalar(select(Client)) is None


@pytest.mark.parametrize("body, content_type", [
    (b"{not json", "application/json"),
    (b"client_name=x", "application/x-www-form-urlencoded"),
    (b"", "application/json"),
    (b"null", "application/json"),
    (b"[" * 30000 + b"]" * 30000, "application/json"),
    ("{\"client_name\": \"\u00e9\"}".encode("latin-1"), "application/json"),
])
def test_a_body_that_is_not_json_is_a_json_error(app, svc, browser, issue, registered, body,
                                                 content_type):
    for send in (lambda: browser.post("/register", data=body, content_type=content_type,
                                      headers=bearer(issue())),
                 lambda: configuration(browser, registered, "put", data=body,
                                       content_type=content_type)):
        response = send()
        assert response.status_code == 400, response.status_code
        assert response.is_json and response.json["error"] == "invalid_request"
    assert load_client(app, svc, registered["client_id"]).name == APP["client_name"]


def test_a_body_too_large_is_refused(browser, issue):
    response = register(browser, issue(), {**APP, "client_name": "x" * 70_000})
    assert response.status_code == 413 and response.is_json


def test_a_description_never_echoes_forbidden_characters(browser, issue):
    response = register(browser, issue(), {**APP, "redirect_uris": ['http://a.example/"\\é']})
    assert response.status_code == 400 and response.json["error"] == "invalid_redirect_uri"
    description = response.json["error_description"]
    assert '"' not in description and "\\" not in description and "é" not in description


def test_client_credentials_clients_need_no_redirect_uri(app, svc, browser, issue):
    response = register(browser, issue(), {"client_name": "Service", "scope": "profile",
                                          "grant_types": ["client_credentials"],
                                          "response_types": []})
    assert response.status_code == 201, response.json
    assert response.json["response_types"] == [] and response.json["redirect_uris"] == []


# -- RFC 7592: management with the registration access token ------------------------------
@pytest.fixture
def registered(browser, issue):
    body = register(browser, issue(max_uses=5)).json
    return body


def configuration(browser, body, method="get", token=None, **kw):
    call = getattr(browser.client, method)
    return call(f"/register/{body['client_id']}",
                headers=bearer(token or body["registration_access_token"]), **kw)


def test_read_the_registration(browser, registered):
    response = configuration(browser, registered)
    assert response.status_code == 200
    body = response.json
    assert body["client_id"] == registered["client_id"]
    assert body["redirect_uris"] == APP["redirect_uris"]
    assert body["registration_access_token"] == registered["registration_access_token"]
    assert body["registration_client_uri"] == registered["registration_client_uri"]
    assert "client_secret" not in body  # stored hashed: never shown again


def test_update_the_registration(app, svc, browser, registered):
    new = {**APP, "client_id": registered["client_id"], "client_name": "Portail des aides v2",
           "redirect_uris": ["https://aides.example.org/cb2"], "scope": "openid email"}
    new.pop("post_logout_redirect_uris")  # omitted: deleted (RFC 7592 §2.2)
    response = configuration(browser, registered, "put", json=new)
    assert response.status_code == 200, response.json
    assert response.json["client_name"] == "Portail des aides v2"
    client = load_client(app, svc, registered["client_id"])
    assert client.name == "Portail des aides v2"
    assert client.redirect_uris == ["https://aides.example.org/cb2"]
    assert client.post_logout_redirect_uris == [] and client.scope == "openid email"
    (event,) = events(app, svc, "client.updated")
    assert event.details["fields"] == ["name", "post_logout_redirect_uris", "redirect_uris",
                                       "scope"]


@pytest.mark.parametrize("change, error", [
    ({"redirect_uris": ["http://aides.example.org/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://aides.example.org/*"]}, "invalid_redirect_uri"),
    ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
    ({"grant_types": ["authorization_code", "client_credentials"]}, "invalid_client_metadata"),
    ({"scope": "openid admin"}, "invalid_client_metadata"),
    ({"client_id": "someone-else"}, "invalid_request"),
    ({"client_secret": "wrong"}, "invalid_request"),
    ({"registration_access_token": "x"}, "invalid_request"),
])
def test_bad_updates_change_nothing(app, svc, browser, registered, change, error):
    response = configuration(browser, registered, "put",
                             json={**APP, "client_id": registered["client_id"], **change})
    assert response.status_code == 400, response.json
    assert response.json["error"] == error
    assert load_client(app, svc, registered["client_id"]).redirect_uris == APP["redirect_uris"]


def test_delete_the_registration(app, svc, browser, registered):
    response = configuration(browser, registered, "delete")
    assert response.status_code == 204
    assert load_client(app, svc, registered["client_id"]) is None
    assert configuration(browser, registered).status_code == 401
    assert events(app, svc, "client.deleted")[0].client_id == registered["client_id"]


def test_another_clients_token_is_refused(app, svc, browser, issue, registered):
    other = register(browser, issue()).json
    for method, kw in (("get", {}), ("put", {"json": {**APP,
                                                      "client_id": registered["client_id"]}}),
                       ("delete", {})):
        response = configuration(browser, registered, method,
                                 token=other["registration_access_token"], **kw)
        assert response.status_code == 401, method
        assert response.json["error"] == "invalid_token"
    assert load_client(app, svc, registered["client_id"]) is not None
    # Errors are in the client's trail for the console.
    assert {e.client_id for e in events(app, svc, "registration.error")} == \
        {registered["client_id"]}


def test_no_token_or_an_unknown_client(browser, registered, client_factory):
    assert browser.client.get(f"/register/{registered['client_id']}").status_code == 401
    unknown = browser.client.get("/register/inconnu", headers=bearer("x"))
    assert unknown.status_code == 401 and unknown.json["error"] == "invalid_token"
    # A client registered in the console has no registration access token.
    rp = client_factory()
    assert browser.client.get(f"/register/{rp.client_id}",
                              headers=bearer(registered["registration_access_token"])
                              ).status_code == 401


def test_the_endpoint_can_be_switched_off(make_app, issue):
    app = make_app(client_registration={"enabled": False})
    client = app.test_client()
    assert client.post("/register", json=APP, headers=bearer("x")).status_code == 404
    assert "registration_endpoint" not in client.get("/.well-known/openid-configuration").json


def test_basic_header_is_not_an_initial_access_token(browser, issue):
    token = issue()
    basic = base64.b64encode(f"{token}:".encode()).decode()
    assert browser.post("/register", json=APP,
                        headers={"Authorization": f"Basic {basic}"}).status_code == 401


def test_a_disabled_client_cannot_manage_its_registration(app, svc, browser, registered):
    with app.app_context():
        svc.db.session.get(Client, registered["client_id"]).disabled = True
        svc.db.session.commit()
    for method, kw in (("get", {}), ("put", {"json": {**APP, "client_id":
                                                      registered["client_id"]}}),
                       ("delete", {})):
        response = configuration(browser, registered, method, **kw)
        assert response.status_code == 403, method
        assert response.json["error"] == "unauthorized_client"
    assert load_client(app, svc, registered["client_id"]) is not None


def test_logout_uris_are_registered(app, svc, browser, issue):
    response = register(browser, issue(), {
        **APP, "backchannel_logout_uri": "https://aides.example.org/logout/bc",
        "backchannel_logout_session_required": True,
        "frontchannel_logout_uri": "https://aides.example.org/logout/fc"})
    assert response.status_code == 201, response.json
    assert response.json["backchannel_logout_uri"] == "https://aides.example.org/logout/bc"
    client = load_client(app, svc, response.json["client_id"])
    assert client.backchannel_logout_uri == "https://aides.example.org/logout/bc"
    assert client.frontchannel_logout_uri == "https://aides.example.org/logout/fc"

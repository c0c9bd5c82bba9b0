"""UserInfo, pairwise subjects, revocation, introspection, discovery, logout."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import ISSUER, basic_auth
from tests.oidc.test_code_flow import exchange, sign_in
from tests.oidc.test_token import bearer
from tests.support import query_of


def tokens_for(browser, rp, user, scope="openid profile email offline_access", **params):
    result, verifier, _ = sign_in(browser, rp, user, scope=scope, **params)
    response = exchange(browser, rp, result["code"], verifier)
    assert response.status_code == 200, response.json
    return response.json


def test_userinfo_errors_follow_rfc6750(browser, rp, user):
    missing = browser.get("/userinfo")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error=" not in missing.headers["WWW-Authenticate"]
    bad = browser.get("/userinfo", headers=bearer("not.a.token"))
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert bad.json["error"] == "invalid_token"
    tokens = tokens_for(browser, rp, user)
    # An ID token is not an access token.
    assert browser.get("/userinfo", headers=bearer(tokens["id_token"])).status_code == 401
    both = browser.post("/userinfo", headers=bearer(tokens["access_token"]),
                        data={"access_token": tokens["access_token"]})
    assert both.status_code == 400 and both.json["error"] == "invalid_request"


def test_userinfo_releases_claims_by_scope(browser, rp, user_factory):
    person = user_factory(email="jean@example.org", phone_number="+33612345678",
                          phone_number_verified=True, street_address="1 rue de la Paix",
                          postal_code="98800", locality="Nouméa", country="Nouvelle-Calédonie")
    tokens = tokens_for(browser, rp, person, scope="openid phone address")
    info = browser.get("/userinfo", headers=bearer(tokens["access_token"])).json
    assert info["phone_number"] == "+33612345678" and info["phone_number_verified"] is True
    assert info["address"]["locality"] == "Nouméa" and "98800 Nouméa" in info["address"]["formatted"]
    assert "email" not in info and "name" not in info


def test_userinfo_needs_the_openid_scope(browser, rp, user):
    tokens = tokens_for(browser, rp, user, scope="email")
    response = browser.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 403 and 'insufficient_scope' in response.headers["WWW-Authenticate"]


def test_pairwise_subjects_differ_between_sectors_and_stay_stable(browser, client_factory, user):
    a = client_factory(redirect_uri="https://a.example.org/cb", subject_type="pairwise",
                       require_consent=False)
    a2 = client_factory(redirect_uri="https://a.example.org/other", subject_type="pairwise",
                        require_consent=False)
    b = client_factory(redirect_uri="https://b.example.org/cb", subject_type="pairwise",
                       require_consent=False)
    keys = KeySet.import_key_set(browser.get("/jwks.json").json)
    subs = {}
    for name, client in (("a", a), ("a2", a2), ("b", b)):
        tokens = tokens_for(browser, client, user)
        subs[name] = jwt.decode(tokens["id_token"], keys).claims["sub"]
        info = browser.get("/userinfo", headers=bearer(tokens["access_token"])).json
        assert info["sub"] == subs[name]
    assert subs["a"] == subs["a2"]  # same sector
    assert subs["a"] != subs["b"] and user.id not in subs.values()


def test_introspection(browser, rp, client_factory, user):
    tokens = tokens_for(browser, rp, user)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        response = browser.post("/introspect", headers=basic_auth(rp), data={"token": token})
        assert response.status_code == 200 and response.json["active"] is True
        assert response.json["client_id"] == rp.client_id and response.json["sub"] == user.id
    other = client_factory(require_consent=False)
    response = browser.post("/introspect", headers=basic_auth(other),
                            data={"token": tokens["access_token"]})
    assert response.json == {"active": False}
    response = browser.post("/introspect", headers=basic_auth(rp), data={"token": "garbage"})
    assert response.json == {"active": False}
    assert browser.post("/introspect", data={"token": tokens["access_token"]}).status_code == 401


def test_revoking_an_access_token(browser, rp, user):
    tokens = tokens_for(browser, rp, user)
    response = browser.post("/revoke", headers=basic_auth(rp),
                            data={"token": tokens["access_token"], "token_type_hint": "access_token"})
    assert response.status_code == 200
    assert browser.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    intro = browser.post("/introspect", headers=basic_auth(rp), data={"token": tokens["access_token"]})
    assert intro.json == {"active": False}
    # The refresh token still works (RFC 7009 leaves it to the server; we keep it).
    refreshed = browser.post("/token", headers=basic_auth(rp), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200


def test_revoking_a_refresh_token_ends_its_family(browser, rp, user):
    tokens = tokens_for(browser, rp, user)
    assert browser.post("/revoke", headers=basic_auth(rp),
                        data={"token": tokens["refresh_token"]}).status_code == 200
    assert browser.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    again = browser.post("/token", headers=basic_auth(rp), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert again.json["error"] == "invalid_grant"
    # Unknown tokens are answered 200 (RFC 7009 §2.2); bad hints are errors.
    assert browser.post("/revoke", headers=basic_auth(rp), data={"token": "nope"}).status_code == 200
    response = browser.post("/revoke", headers=basic_auth(rp),
                            data={"token": "nope", "token_type_hint": "weird"})
    assert response.json["error"] == "unsupported_token_type"


def test_discovery_document(browser):
    meta = browser.get("/.well-known/openid-configuration").json
    assert meta["issuer"] == ISSUER
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                "end_session_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert meta[key].startswith(ISSUER + "/")
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["subject_types_supported"]) == {"public", "pairwise"}
    assert {"RS256", "ES256"} <= set(meta["id_token_signing_alg_values_supported"])
    assert {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"} <= set(
        meta["token_endpoint_auth_methods_supported"])
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["claims_parameter_supported"] is True
    assert "offline_access" in meta["scopes_supported"]
    jwks = browser.get("/jwks.json").json
    assert {k["alg"] for k in jwks["keys"]} >= {"RS256", "ES256"}
    assert all("d" not in k for k in jwks["keys"])  # public parts only


def test_rp_initiated_logout_with_hint_redirects_with_state(browser, rp, user):
    online = tokens_for(browser, rp, user, scope="openid email")
    offline = tokens_for(browser, rp, user)
    tokens = online
    response = browser.get("/logout?" + "&".join([
        f"id_token_hint={tokens['id_token']}",
        "post_logout_redirect_uri=https://demarche.example.org/bye", "state=xyz"]))
    assert response.status_code == 302
    assert response.headers["Location"] == "https://demarche.example.org/bye?state=xyz"
    # Signed out: prompt=none now fails, and online tokens of the session are revoked.
    again, _, _ = browser.authorize(rp, prompt="none")
    assert query_of(again.headers["Location"])["error"] == "login_required"
    assert browser.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    # offline_access grants outlive the browser session.
    assert browser.get("/userinfo", headers=bearer(offline["access_token"])).status_code == 200


def test_logout_refuses_unregistered_redirect_and_bad_hints(browser, rp, user):
    tokens = tokens_for(browser, rp, user)
    response = browser.get(f"/logout?id_token_hint={tokens['id_token']}"
                           "&post_logout_redirect_uri=https://evil.example/")
    assert response.status_code == 400 and "Location" not in response.headers
    response = browser.get("/logout?id_token_hint=garbage")
    assert response.status_code == 400
    response = browser.get("/logout?post_logout_redirect_uri=https://demarche.example.org/bye")
    assert response.status_code == 400  # no client to check it against


def test_logout_without_hint_asks_for_confirmation(browser, rp, user):
    tokens_for(browser, rp, user)
    page = browser.get("/logout")
    assert page.status_code == 200 and b'name="confirm"' in page.data
    # A forged POST without the CSRF token does not sign out.
    browser.post("/logout", data={"confirm": "yes"})
    still, _, _ = browser.authorize(rp, prompt="none")
    assert "code" in query_of(still.headers["Location"])
    done = browser.submit(page, "confirm", button=("confirm", "yes"))
    assert done.status_code == 200 and "déconnecté".encode() in done.data
    after, _, _ = browser.authorize(rp, prompt="none")
    assert query_of(after.headers["Location"])["error"] == "login_required"


def test_a_pairwise_subject_is_remembered_when_its_code_is_exchanged(app, svc, browser,
                                                                      client_factory, user):
    from sqlalchemy import select

    from idp.persistence.models import HubSubject

    client = client_factory(redirect_uri="https://a.example.org/cb", subject_type="pairwise",
                            require_consent=False)
    tokens = tokens_for(browser, client, user)
    sub = jwt.decode(tokens["id_token"], KeySet.import_key_set(
        browser.get("/jwks.json").json)).claims["sub"]
    with app.app_context():
        row = svc.db.session.scalar(select(HubSubject).where(HubSubject.subject == sub))
        assert row is not None and row.user_id == user.id and row.sector == "a.example.org"

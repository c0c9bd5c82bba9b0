"""Token endpoint: client authentication, code and refresh rules, client_credentials."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import select, update

from idp.persistence.models import Consumable
from tests.account.oidc_helpers import refresh
from tests.conftest import ISSUER, basic_auth
from tests.support import Browser
from tests.oidc.test_code_flow import exchange, sign_in


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_wrong_client_secret_is_401_with_www_authenticate(browser, rp, user):
    result, verifier, _ = sign_in(browser, rp, user)
    bad = base64.b64encode(f"{rp.client_id}:wrong".encode()).decode()
    response = browser.post("/token", headers={"Authorization": f"Basic {bad}"}, data={
        "grant_type": "authorization_code", "code": result["code"],
        "redirect_uri": rp.redirect_uri, "code_verifier": verifier})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.headers["Cache-Control"] == "no-store"


def test_unknown_client_and_missing_auth_are_invalid_client(browser):
    unknown = base64.b64encode(b"nobody:secret").decode()
    response = browser.post("/token", headers={"Authorization": f"Basic {unknown}"},
                            data={"grant_type": "client_credentials"})
    assert response.status_code == 401 and response.json["error"] == "invalid_client"
    response = browser.post("/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401 and response.json["error"] == "invalid_client"


def test_client_secret_post(browser, client_factory, user):
    rp = client_factory(auth_method="client_secret_post", require_consent=False)
    result, verifier, _ = sign_in(browser, rp, user)
    response = browser.post("/token", data={
        "grant_type": "authorization_code", "code": result["code"], "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier, "client_id": rp.client_id, "client_secret": rp.client_secret})
    assert response.status_code == 200, response.json
    # The same client may not use Basic: its registered method is client_secret_post.
    result, verifier, _ = sign_in(browser, rp, user)
    response = exchange(browser, rp, result["code"], verifier)
    assert response.status_code == 401


def test_wrong_verifier_redirect_uri_or_client_fail_with_invalid_grant(browser, rp, client_factory, user):
    result, verifier, _ = sign_in(browser, rp, user)
    assert exchange(browser, rp, result["code"], "x" * 50).json["error"] == "invalid_grant"
    result, verifier, _ = sign_in(browser, rp, user)
    response = exchange(browser, rp, result["code"], verifier, redirect_uri="https://other.example/cb")
    assert response.json["error"] == "invalid_grant"
    other = client_factory(require_consent=False)
    result, verifier, _ = sign_in(browser, rp, user)
    response = browser.post("/token", headers=basic_auth(other), data={
        "grant_type": "authorization_code", "code": result["code"],
        "redirect_uri": other.redirect_uri, "code_verifier": verifier})
    assert response.json["error"] == "invalid_grant"


def test_expired_code_is_refused(browser, rp, user, svc, app):
    result, verifier, _ = sign_in(browser, rp, user)
    with app.app_context():
        svc.db.session.execute(update(Consumable).values(
            expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
        svc.db.session.commit()
    assert exchange(browser, rp, result["code"], verifier).json["error"] == "invalid_grant"


def test_code_lifetime_is_60_seconds_at_most(browser, rp, user, svc, app):
    sign_in(browser, rp, user)
    with app.app_context():
        code = svc.db.session.query(Consumable).filter_by(kind="authorization_code").one()
        assert (code.expires_at - code.created_at).total_seconds() <= 60


def test_codes_carry_256_random_bits_and_differ(browser, new_browser, rp, user):
    codes = {sign_in(b, rp, user)[0]["code"] for b in (browser, new_browser())}
    assert len(codes) == 2
    for code in codes:
        # token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
        assert len(code) == 43 and set(code) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_refresh_rotation_and_reuse_revokes_the_family(browser, rp, user):
    result, verifier, _ = sign_in(browser, rp, user, scope="openid email offline_access")
    first = exchange(browser, rp, result["code"], verifier).json
    assert "refresh_token" in first
    refreshed = refresh(browser, rp, first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.json
    second = refreshed.json
    assert second["refresh_token"] != first["refresh_token"]
    assert browser.get("/userinfo", headers=bearer(second["access_token"])).status_code == 200
    reuse = refresh(browser, rp, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json["error"] == "invalid_grant"
    # The whole family is gone: the latest refresh token and access token too.
    latest = refresh(browser, rp, second["refresh_token"])
    assert latest.json["error"] == "invalid_grant"
    assert browser.get("/userinfo", headers=bearer(second["access_token"])).status_code == 401


def test_no_refresh_token_without_offline_access(browser, rp, user):
    result, verifier, _ = sign_in(browser, rp, user, scope="openid email")
    assert "refresh_token" not in exchange(browser, rp, result["code"], verifier).json


def test_client_credentials_tokens_are_unique_and_introspectable(browser, client_factory):
    service = client_factory(grant_types=["client_credentials"], scopes=["profile"],
                             require_consent=False)
    tokens = []
    for _ in range(3):
        response = browser.post("/token", headers=basic_auth(service),
                                data={"grant_type": "client_credentials"})
        assert response.status_code == 200, response.json
        assert response.json["expires_in"] == 300 and "refresh_token" not in response.json
        tokens.append(response.json["access_token"])
    assert len(set(tokens)) == 3  # random jti: never two identical tokens
    keys = KeySet.import_key_set(browser.get("/jwks.json").json)
    claims = jwt.decode(tokens[0], keys).claims
    assert claims["sub"] == service.client_id and claims["iss"] == ISSUER and claims["jti"]
    intro = browser.post("/introspect", headers=basic_auth(service), data={"token": tokens[0]})
    assert intro.json["active"] is True and intro.json["client_id"] == service.client_id
    # A client token is not a user token: userinfo refuses it.
    assert browser.get("/userinfo", headers=bearer(tokens[0])).status_code == 401


def test_client_credentials_rules(browser, rp, client_factory):
    response = browser.post("/token", headers=basic_auth(rp), data={"grant_type": "client_credentials"})
    assert response.json["error"] == "unauthorized_client"
    service = client_factory(grant_types=["client_credentials"], scopes=["profile"])
    response = browser.post("/token", headers=basic_auth(service),
                            data={"grant_type": "client_credentials", "scope": "email"})
    assert response.json["error"] == "invalid_scope"
    response = browser.post("/token", headers=basic_auth(service), data={"grant_type": "password"})
    assert response.json["error"] == "unsupported_grant_type"
    # Values an error_description cannot carry (RFC 6749 §5.2) are unsupported too.
    for value in ('pass"word', "password\\", "\U0001f600", "password\x01", "password\n"):
        response = browser.post("/token", headers=basic_auth(service), data={"grant_type": value})
        assert response.status_code == 400, value
        assert response.json["error"] == "unsupported_grant_type"


def _assertion(key, client_id, aud, jti=None):
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
              "jti": jti or secrets.token_urlsafe(12)}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def test_private_key_jwt_authentication_and_assertion_replay(browser, client_factory):
    key = ECKey.generate_key("P-256", auto_kid=True)
    jwks = {"keys": [key.as_dict(private=False)]}
    service = client_factory(auth_method="private_key_jwt", jwks=jwks,
                             grant_types=["client_credentials"], scopes=["profile"])
    assertion = _assertion(key, service.client_id, f"{ISSUER}/token")
    data = {"grant_type": "client_credentials", "client_id": service.client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}
    response = browser.post("/token", data=data)
    assert response.status_code == 200, response.json
    replay = browser.post("/token", data=data)
    assert replay.status_code == 401 and replay.json["error"] == "invalid_client"
    wrong_key = ECKey.generate_key("P-256", auto_kid=True)
    data["client_assertion"] = _assertion(wrong_key, service.client_id, f"{ISSUER}/token")
    assert browser.post("/token", data=data).status_code == 401
    data["client_assertion"] = _assertion(key, service.client_id, "https://elsewhere.example")
    assert browser.post("/token", data=data).status_code == 401


def test_malformed_token_requests_never_500(browser, rp):
    for data in ({}, {"grant_type": ""}, {"grant_type": "authorization_code"},
                 {"grant_type": "refresh_token", "refresh_token": "x" * 5000},
                 {"grant_type": "authorization_code", "code": "\x00\x01"}):
        response = browser.post("/token", headers=basic_auth(rp), data=data)
        assert 400 <= response.status_code < 500, (data, response.status_code)
        assert "error" in response.json
    response = browser.post("/token", headers={"Authorization": "Basic !!!"},
                            data={"grant_type": "client_credentials"})
    assert 400 <= response.status_code < 500


def test_a_failed_exchange_leaves_the_code_and_refresh_token_usable(browser, rp, user):
    # The code is consumed in the transaction that issues the tokens: an exchange that
    # fails after finding the code (PKCE, here) issues nothing and burns nothing.
    result, verifier, _ = sign_in(browser, rp, user, scope="openid email offline_access")
    assert exchange(browser, rp, result["code"], "x" * 50).json["error"] == "invalid_grant"
    tokens = exchange(browser, rp, result["code"], verifier)
    assert tokens.status_code == 200, tokens.json
    # Same for a refresh that asks for more than its grant: refused, token still valid.
    widened = refresh(browser, rp, tokens.json["refresh_token"], scope="openid email phone")
    assert widened.json["error"] == "invalid_scope"
    refreshed = refresh(browser, rp, tokens.json["refresh_token"])
    assert refreshed.status_code == 200, refreshed.json
    # And the code, once exchanged, is spent: a replay revokes what it issued.
    replay = exchange(browser, rp, result["code"], verifier)
    assert replay.json["error"] == "invalid_grant"
    assert browser.get("/userinfo", headers=bearer(refreshed.json["access_token"])).status_code == 401


def test_a_refresh_token_shown_by_another_client_ends_its_family(browser, rp, client_factory, user):
    result, verifier, _ = sign_in(browser, rp, user, scope="openid email offline_access")
    tokens = exchange(browser, rp, result["code"], verifier).json
    other = client_factory(require_consent=False)
    stolen = refresh(browser, other, tokens["refresh_token"])
    assert stolen.json["error"] == "invalid_grant"
    legit = refresh(browser, rp, tokens["refresh_token"])
    assert legit.json["error"] == "invalid_grant"
    assert browser.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


def graceful_browser(make_app):
    """A browser on an application with a 10-second reuse grace period (the suite's
    default is none); same database as the ``app`` fixture's."""
    app = make_app(tokens={"refresh_token_reuse_grace": 10})
    return app, Browser(app.test_client())


def test_two_tabs_refreshing_at_once_keep_the_family(make_app, rp, user):
    _, browser = graceful_browser(make_app)
    result, verifier, _ = sign_in(browser, rp, user, scope="openid email offline_access")
    first = exchange(browser, rp, result["code"], verifier).json
    tab_a = refresh(browser, rp, first["refresh_token"])
    tab_b = refresh(browser, rp, first["refresh_token"])  # the same token, a moment later
    assert tab_a.status_code == tab_b.status_code == 200
    assert tab_a.json["refresh_token"] != tab_b.json["refresh_token"]
    # Both tabs go on; the family is alive.
    assert refresh(browser, rp, tab_a.json["refresh_token"]).status_code == 200
    assert refresh(browser, rp, tab_b.json["refresh_token"]).status_code == 200


def test_a_reuse_after_the_grace_period_still_revokes_the_family(make_app, rp, user):
    app, browser = graceful_browser(make_app)
    svc = app.extensions["idp"]
    result, verifier, _ = sign_in(browser, rp, user, scope="openid email offline_access")
    first = exchange(browser, rp, result["code"], verifier).json
    second = refresh(browser, rp, first["refresh_token"]).json
    with app.app_context():
        for item in svc.db.session.scalars(select(Consumable).where(
                Consumable.consumed_at.is_not(None))):
            item.consumed_at -= dt.timedelta(seconds=11)
        svc.db.session.commit()
    assert refresh(browser, rp, first["refresh_token"]).json["error"] == "invalid_grant"
    assert refresh(browser, rp, second["refresh_token"]).json["error"] == "invalid_grant"

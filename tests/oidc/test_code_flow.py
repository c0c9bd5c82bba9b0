"""Authorization code flow with PKCE, end to end through the provider's pages."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import ISSUER, basic_auth
from tests.support import query_of


def exchange(browser, rp, code, verifier, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier, **extra}
    headers = basic_auth(rp) if rp.client_secret else {}
    if not rp.client_secret:
        data["client_id"] = rp.client_id
    return browser.post("/token", data=data, headers=headers)


def sign_in(browser, rp, user, **params):
    response, verifier, query = browser.authorize(rp, **params)
    location = browser.follow_to_client(response, email=user.email)
    return query_of(location), verifier, query


def test_full_code_flow_issues_verifiable_tokens(browser, rp, user):
    result, verifier, query = sign_in(browser, rp, user, scope="openid profile email")
    assert result["state"] == query["state"]
    assert result["iss"] == ISSUER
    token = exchange(browser, rp, result["code"], verifier)
    assert token.status_code == 200, token.json
    assert token.headers["Cache-Control"] == "no-store"
    body = token.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert "refresh_token" not in body  # no offline_access asked
    keys = KeySet.import_key_set(browser.get("/jwks.json").json)
    id_token = jwt.decode(body["id_token"], keys)
    claims = id_token.claims
    assert claims["iss"] == ISSUER and claims["aud"] == rp.client_id
    assert claims["azp"] == rp.client_id
    assert claims["nonce"] == query["nonce"]
    assert claims["sub"] == user.id
    assert claims["acr"] == "eidas1" and claims["amr"] == ["pwd"]
    assert claims["sid"] and abs(claims["auth_time"] - time.time()) < 60
    assert claims["exp"] > claims["iat"]
    assert "at_hash" in claims
    info = browser.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200
    assert info.json == {"sub": user.id, "email": user.email, "email_verified": True,
                         "name": "Marie Dupont", "given_name": "Marie", "family_name": "Dupont",
                         "locale": "fr", "updated_at": info.json["updated_at"]}
    post = browser.post("/userinfo", data={"access_token": body["access_token"]})
    assert post.status_code == 200 and post.json["sub"] == user.id


def test_code_is_single_use_and_replay_revokes_first_tokens(browser, rp, user):
    result, verifier, _ = sign_in(browser, rp, user)
    first = exchange(browser, rp, result["code"], verifier)
    assert first.status_code == 200
    access = first.json["access_token"]
    assert browser.get("/userinfo", headers={"Authorization": f"Bearer {access}"}).status_code == 200
    replay = exchange(browser, rp, result["code"], verifier)
    assert replay.status_code == 400 and replay.json["error"] == "invalid_grant"
    after = browser.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert after.status_code == 401
    assert 'error="invalid_token"' in after.headers["WWW-Authenticate"]


def test_es256_id_tokens_for_clients_that_ask(browser, client_factory, user):
    es_client = client_factory(require_consent=False, id_token_signed_response_alg="ES256")
    result, verifier, _ = sign_in(browser, es_client, user)
    id_token = exchange(browser, es_client, result["code"], verifier).json["id_token"]
    keys = KeySet.import_key_set(browser.get("/jwks.json").json)
    decoded = jwt.decode(id_token, keys, algorithms=["ES256"])
    assert decoded.header["alg"] == "ES256" and decoded.claims["aud"] == es_client.client_id


def test_the_sso_session_records_the_client_when_the_code_is_issued(browser, rp, user, svc, app):
    from idp.persistence.models import SsoSession

    result, verifier, _ = sign_in(browser, rp, user)
    with app.app_context():
        sso = svc.db.session.query(SsoSession).filter_by(user_id=user.id).one()
        assert sso.clients == [rp.client_id]


def test_the_logins_rows_are_stored_whole(browser, rp, user, svc, app):
    # On PostgreSQL the code, its family, the SSO session and the audit event are written
    # by one statement that applies no column default (idp/oidc/grants.py,
    # _INSERT_FAMILY_AND_CODE, carrying the pending rows of idp/persistence/inserts.py);
    # on SQLite by plain INSERTs.
    import datetime as dt
    import json

    from idp.persistence.models import AuditEvent, Consumable, Grant, SsoSession
    from idp.persistence.models.base import utcnow

    claims = {"id_token": {"email": None}}
    result, verifier, query = sign_in(browser, rp, user, scope="openid email",
                                      claims=json.dumps(claims))
    with app.app_context():
        session = svc.db.session
        code = session.query(Consumable).filter_by(kind="authorization_code").one()
        family = session.get(Grant, code.grant_id)
        sso = session.query(SsoSession).filter_by(user_id=user.id).one()
        assert (family.user_id, family.client_id, family.scope) == (
            user.id, rp.client_id, "openid email")
        assert (family.sso_session_id, family.acr, family.amr) == (sso.id, "eidas1", ["pwd"])
        assert family.claims_request == claims and family.revoked_at is None
        assert family.auth_time == int(sso.auth_time.timestamp())
        assert abs((utcnow() - family.created_at).total_seconds()) < 60
        assert (code.user_id, code.client_id, code.attempts) == (user.id, rp.client_id, 0)
        assert code.consumed_at is None and code.revoked_at is None and code.id
        assert abs((code.created_at - family.created_at).total_seconds()) < 1
        assert 0 < (code.expires_at - code.created_at).total_seconds() <= 60
        assert code.data["redirect_uri"] == rp.redirect_uri
        assert code.data["nonce"] == query["nonce"]
        assert code.data["code_challenge_method"] == "S256"
        assert (sso.amr, sso.acr, sso.clients, sso.ended_at) == (
            ["pwd"], "eidas1", [rp.client_id], None)
        assert sso.expires_at - sso.created_at == dt.timedelta(
            seconds=svc.settings.session.absolute_lifetime)
        assert sso.last_seen_at == sso.created_at == sso.auth_time
        login = session.query(AuditEvent).filter_by(type="login.success").one()
        assert (login.user_id, login.outcome, login.details) == (
            user.id, "success", {"method": "pwd"})
    assert exchange(browser, rp, result["code"], verifier).status_code == 200


def test_tokens_of_a_disabled_account_stop_working(browser, rp, user, svc, app):
    from sqlalchemy import update

    from idp.persistence.models import User

    result, verifier, _ = sign_in(browser, rp, user, scope="openid email offline_access")
    tokens = exchange(browser, rp, result["code"], verifier).json
    with app.app_context():
        svc.db.session.execute(update(User).where(User.id == user.id).values(disabled=True))
        svc.db.session.commit()
    info = browser.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 401
    introspected = browser.post("/introspect", headers=basic_auth(rp),
                                data={"token": tokens["access_token"]})
    assert introspected.json == {"active": False}
    refreshed = browser.post("/token", headers=basic_auth(rp), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.json["error"] == "invalid_grant"

"""The sample apps' check of a logout token (OIDC Back-Channel Logout 1.0 §2.6)."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from clients.common.web import (BACKCHANNEL_EVENT, LogoutTokenError, LoginStore, Login,
                                verify_logout_token)

ISSUER = "https://compte.example.org"
KEY = ECKey.generate_key("P-256", auto_kid=True)
JWKS = {"keys": [KEY.as_dict(private=False)]}


def token(**changes) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "app", "iat": now, "exp": now + 120, "jti": "j1",
              "sub": "s", "sid": "session-1", "events": {BACKCHANNEL_EVENT: {}}}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "ES256", "kid": KEY.kid, "typ": "logout+jwt"}, claims, KEY)


def test_a_valid_token_is_accepted_once():
    seen: set[str] = set()
    assert verify_logout_token(token(), JWKS, ISSUER, "app", seen)["sid"] == "session-1"
    with pytest.raises(LogoutTokenError):
        verify_logout_token(token(), JWKS, ISSUER, "app", seen)  # replayed


@pytest.mark.parametrize("changes", [
    {"aud": "another-app"}, {"iss": "https://elsewhere.example"}, {"nonce": "n"},
    {"events": {"other": {}}}, {"sid": None, "sub": None}, {"iat": int(time.time()) - 3600},
    {"exp": int(time.time()) - 1}, {"jti": None},
])
def test_a_token_that_breaks_a_rule_is_refused(changes):
    with pytest.raises(LogoutTokenError):
        verify_logout_token(token(**changes), JWKS, ISSUER, "app", set())


def test_a_token_signed_by_another_key_is_refused():
    other = ECKey.generate_key("P-256", auto_kid=True)
    forged = jwt.encode({"alg": "ES256", "kid": KEY.kid}, {"iss": ISSUER}, other)
    with pytest.raises(LogoutTokenError):
        verify_logout_token(forged, JWKS, ISSUER, "app", set())


def test_the_session_named_by_sid_ends_and_only_it():
    store = LoginStore()
    keep = store.add(Login(token={}, id_claims={"sub": "s", "sid": "other"}, userinfo={}))
    gone = store.add(Login(token={}, id_claims={"sub": "s", "sid": "session-1"}, userinfo={}))
    assert store.end_session("session-1", "s") == 1
    assert store.get(gone) is None and store.get(keep) is not None

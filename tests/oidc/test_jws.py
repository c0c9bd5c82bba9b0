"""Our compact JWS signer (idp/oidc/jws.py): what it signs, joserfc verifies."""

from __future__ import annotations

import base64

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from idp.oidc import jws
from idp.oidc.keys import generate_key

CLAIMS = {"iss": "https://idp.example.org", "sub": "u1", "aud": "c1", "iat": 1, "exp": 2,
          "given_name": "Élodie", "amr": ["pwd"], "jti": "abc"}


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_tokens_verify_with_joserfc(alg):
    key = generate_key(alg)
    token = jws.sign_compact({"alg": alg, "kid": key.kid, "typ": "at+jwt"}, CLAIMS,
                             key.private_key)
    public = KeySet.import_key_set({"keys": [key.as_dict(private=False)]})
    decoded = jwt.decode(token, public, algorithms=[alg])
    assert decoded.header == {"alg": alg, "kid": key.kid, "typ": "at+jwt"}
    assert dict(decoded.claims) == CLAIMS
    signature = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
    assert len(signature) == (64 if alg == "ES256" else 256)  # r || s; RSA-2048


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_changed_payload_does_not_verify(alg):
    key = generate_key(alg)
    header, _, signature = jws.sign_compact({"alg": alg, "kid": key.kid}, CLAIMS,
                                            key.private_key).split(".")
    forged = jws.b64url(b'{"sub":"admin"}').decode()
    public = KeySet.import_key_set({"keys": [key.as_dict(private=False)]})
    with pytest.raises(BadSignatureError):
        jwt.decode(f"{header}.{forged}.{signature}", public, algorithms=[alg])


def test_the_header_algorithm_must_match_the_key():
    ec_key = generate_key("ES256")
    with pytest.raises(ValueError):
        jws.sign_compact({"alg": "RS256"}, CLAIMS, ec_key.private_key)
    with pytest.raises(ValueError):
        jws.sign_compact({"alg": "none"}, CLAIMS, ec_key.private_key)

"""Compact JWS signing (RFC 7515 §7.1) of the tokens we mint, for RS256 and ES256.

joserfc verifies every token (ours, and clients' assertions); signing our own tokens, with
a header we write ourselves and a key we generated, needs none of its generality, and its
registry and key checks cost about as much as an ES256 signature (docs/performance-history.md,
fourth pass). The output is an ordinary JWS that joserfc verifies (tests/oidc/test_jws.py).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

P256_BYTES = 32


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def sign_compact(header: dict[str, Any], claims: dict[str, Any],
                 private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """``header.claims.signature``; ``header["alg"]`` is RS256 or ES256 and must match the
    key."""
    signing_input = b64url(_json(header)) + b"." + b64url(_json(claims))
    alg = header["alg"]
    if alg == "RS256" and isinstance(private_key, rsa.RSAPrivateKey):
        signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256" and isinstance(private_key, ec.EllipticCurvePrivateKey) \
            and isinstance(private_key.curve, ec.SECP256R1):
        # JWS wants r || s, each on 32 bytes (RFC 7518 §3.4), not the DER sequence.
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(P256_BYTES, "big") + s.to_bytes(P256_BYTES, "big")
    else:
        raise ValueError(f"cannot sign {alg} with this key")
    return (signing_input + b"." + b64url(signature)).decode("ascii")

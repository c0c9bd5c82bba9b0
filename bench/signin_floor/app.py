"""The floor of a sign-in on this stack: what the least a provider built on Flask,
SQLAlchemy (Core), psycopg, redis-py and ``cryptography`` can cost per flow.

Not a provider: a bench fixture that bench/run.py starts under the same gunicorn command
as ours (``gunicorn.conf.py``, same worker class and count) when it measures the sign-in,
and drives with the same load generator. It answers the same six requests (authorize,
login page, login, resume, token, userinfo) with the fewest storage round trips a
provider keeping durable codes and refresh tokens needs, and nothing else:

- the authorization request kept in Redis between the requests (one SET, two GETs, one
  GETDEL), the browser session in Redis (one SET, one GET);
- the account read by its e-mail address (one SELECT on the provider's own ``users``
  table), the password *not* checked: the suite subtracts one argon2id verification from
  our flow, and node's development login checks none. With
  ``BENCH_FLOOR_VERIFY_PASSWORD=1`` it is checked against the account's stored argon2id
  hash (argon2-cffi, the parameters the hash carries): the sign-in check's own reading,
  CPU per flow minus one verification timed alone, applied to the floor, says whether
  any provider on this stack could pass it on this machine;
- the code stored in PostgreSQL (one INSERT), consumed by one atomic UPDATE joined to the
  account, the refresh token stored in the same transaction (one INSERT);
- an RS256 ID token and an ES256 access token, as ours (the same key kinds as node's);
- the userinfo claims read back (one SELECT) after the access token's signature is checked;
- the login page rendered by Jinja from a template of about the size of ours.

None of the provider's own layers: no Authlib, no ORM, no Flask-Login, Flask-WTF or
Flask-Babel, no rate limit, lockout, audit trail, SSO session row or flow row. So its
CPU per flow is a lower bound for any provider on this stack, which the report sets
beside ours and node's. It imports nothing of the provider but its psycopg cursor
(``idp.persistence.db.lean_description_cursor``), which any provider on this stack can
use: without it, the floor would pay psycopg's ``Column`` objects that ours no longer
does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlencode

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                             encode_dss_signature)
from flask import Flask, abort, jsonify, make_response, redirect, render_template, request
from sqlalchemy import create_engine, text

from idp.persistence.db import lean_description_cursor

ISSUER = os.environ["BENCH_FLOOR_ISSUER"]
CLIENT_ID = os.environ["BENCH_FLOOR_CLIENT_ID"]
CLIENT_SECRET = os.environ["BENCH_FLOOR_CLIENT_SECRET"]
REDIRECT_URI = os.environ["BENCH_FLOOR_REDIRECT_URI"]
SECRET = os.environ["BENCH_FLOOR_SECRET"].encode()
KEYS = Path(os.environ["BENCH_FLOOR_KEYS"])
TABLE = os.environ.get("BENCH_FLOOR_TABLE", "bench_floor_tokens")
VERIFY_PASSWORD = os.environ.get("BENCH_FLOOR_VERIFY_PASSWORD") == "1"

RSA_KEY = serialization.load_pem_private_key((KEYS / "rsa.pem").read_bytes(), None)
EC_KEY = serialization.load_pem_private_key((KEYS / "ec.pem").read_bytes(), None)
EC_PUBLIC = EC_KEY.public_key()

engine = create_engine(os.environ["BENCH_FLOOR_DATABASE_URL"], pool_size=8,
                       connect_args={"cursor_factory": lean_description_cursor()})
kv = redis.Redis.from_url(os.environ["BENCH_FLOOR_REDIS_URL"])
hasher = PasswordHasher()

FIND_USER = text("SELECT id, password_hash FROM users WHERE email = :email")
INSERT_TOKEN = text(f"INSERT INTO {TABLE} (lookup, kind, user_id, data, expires_at) "
                    "VALUES (:lookup, :kind, :user_id, :data, now() + make_interval(secs => :ttl))")
CONSUME_CODE = text(
    f"WITH consumed AS (UPDATE {TABLE} SET consumed_at = now() WHERE lookup = :lookup "
    "AND kind = 'code' AND consumed_at IS NULL AND expires_at > now() "
    "RETURNING user_id, data) "
    "SELECT consumed.data, users.id, users.email, users.email_verified, users.given_name, "
    "users.family_name FROM consumed JOIN users ON users.id = consumed.user_id")
USER_CLAIMS = text("SELECT id, email, email_verified, given_name, family_name FROM users "
                   "WHERE id = :id")

app = Flask(__name__, root_path=str(Path(__file__).resolve().parent))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(claims: dict, alg: str) -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": alg.lower()},
                             separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}".encode()
    if alg == "RS256":
        signature = RSA_KEY.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(EC_KEY.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{header}.{body}.{_b64(signature)}"


def _verify_access_token(token: str) -> dict | None:
    try:
        header, body, signature = token.split(".")
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                   int.from_bytes(raw[32:], "big"))
        EC_PUBLIC.verify(der, f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, InvalidSignature):
        return None
    return claims if claims.get("exp", 0) > time.time() else None


def _csrf(interaction_id: str) -> str:
    return hmac.new(SECRET, interaction_id.encode(), hashlib.sha256).hexdigest()


@app.get("/.well-known/openid-configuration")
def discovery():
    return jsonify({
        "issuer": ISSUER, "authorization_endpoint": ISSUER + "/authorize",
        "token_endpoint": ISSUER + "/token", "userinfo_endpoint": ISSUER + "/userinfo",
        "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"]})


@app.get("/authorize")
def authorize():
    args = request.args
    if args.get("client_id") != CLIENT_ID or args.get("redirect_uri") != REDIRECT_URI \
            or args.get("response_type") != "code" \
            or args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
        abort(400)
    interaction_id = secrets.token_urlsafe(16)
    kv.set("i:" + interaction_id, json.dumps(args.to_dict()), ex=1800)
    return redirect("/login/" + interaction_id)


def _interaction(interaction_id: str) -> dict:
    raw = kv.get("i:" + interaction_id)
    if raw is None:
        abort(400)
    return json.loads(raw)


@app.route("/login/<interaction_id>", methods=["GET", "POST"])
def login(interaction_id: str):
    params = _interaction(interaction_id)
    page = {"service_name": "Compte usager", "client_name": params["client_id"],
            "interaction_id": interaction_id, "csrf_token": _csrf(interaction_id),
            "email": "", "error": None}
    if request.method == "GET":
        return render_template("login.html", **page)
    if not hmac.compare_digest(request.form.get("csrf_token", ""), _csrf(interaction_id)):
        abort(400)
    email = request.form.get("email", "").strip().lower()
    with engine.connect() as conn:
        user = conn.execute(FIND_USER, {"email": email}).first()
    if user is None or not _password_ok(user.password_hash, request.form.get("password", "")):
        return render_template("login.html", **{**page, "email": email,
                                                "error": "Identifiants incorrects."}), 400
    session_id = secrets.token_urlsafe(32)
    kv.set("s:" + session_id, json.dumps({"user_id": user.id, "auth_time": int(time.time())}),
           ex=8 * 3600)
    response = redirect("/authorize/resume/" + interaction_id)
    response.set_cookie("sid", session_id, httponly=True, samesite="Lax")
    return response


def _password_ok(stored_hash: str, password: str) -> bool:
    if not VERIFY_PASSWORD:
        return bool(password)
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@app.get("/authorize/resume/<interaction_id>")
def resume(interaction_id: str):
    raw_session = kv.get("s:" + request.cookies.get("sid", ""))
    raw = kv.getdel("i:" + interaction_id)
    if raw_session is None or raw is None:
        abort(400)
    params, signed_in = json.loads(raw), json.loads(raw_session)
    code = secrets.token_urlsafe(32)
    data = {k: params.get(k) for k in ("nonce", "code_challenge", "scope")}
    data["auth_time"] = signed_in["auth_time"]
    with engine.begin() as conn:
        conn.execute(INSERT_TOKEN, {"lookup": hashlib.sha256(code.encode()).hexdigest(),
                                    "kind": "code", "user_id": signed_in["user_id"],
                                    "data": json.dumps(data), "ttl": 60})
    query = urlencode({"code": code, "state": params.get("state", ""), "iss": ISSUER})
    response = redirect(f"{REDIRECT_URI}?{query}")
    response.headers["Cache-Control"] = "no-store"
    return response


def _token_error(error: str, status: int = 400):
    response = jsonify({"error": error})
    response.status_code = status
    return response


@app.post("/token")
def token():
    auth = request.authorization
    if auth is None or auth.username != CLIENT_ID or \
            not hmac.compare_digest(auth.password or "", CLIENT_SECRET):
        return _token_error("invalid_client", 401)
    form = request.form
    if form.get("grant_type") != "authorization_code" or not form.get("code"):
        return _token_error("unsupported_grant_type")
    refresh = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        row = conn.execute(CONSUME_CODE, {
            "lookup": hashlib.sha256(form["code"].encode()).hexdigest()}).first()
        if row is None:
            return _token_error("invalid_grant")
        data = json.loads(row.data) if isinstance(row.data, str) else row.data
        verifier = form.get("code_verifier", "")
        if _b64(hashlib.sha256(verifier.encode()).digest()) != data["code_challenge"]:
            return _token_error("invalid_grant")
        conn.execute(INSERT_TOKEN, {"lookup": hashlib.sha256(refresh.encode()).hexdigest(),
                                    "kind": "refresh", "user_id": row.id,
                                    "data": json.dumps({"scope": data["scope"]}),
                                    "ttl": 30 * 86400})
    now = int(time.time())
    id_token = _sign({"iss": ISSUER, "sub": row.id, "aud": CLIENT_ID, "iat": now,
                      "exp": now + 300, "auth_time": data["auth_time"], "nonce": data["nonce"],
                      "email": row.email, "email_verified": row.email_verified,
                      "given_name": row.given_name, "family_name": row.family_name}, "RS256")
    access_token = _sign({"iss": ISSUER, "sub": row.id, "aud": CLIENT_ID, "iat": now,
                          "exp": now + 600, "jti": secrets.token_urlsafe(16),
                          "client_id": CLIENT_ID, "scope": data["scope"]}, "ES256")
    response = jsonify({"access_token": access_token, "token_type": "Bearer",
                        "expires_in": 600, "refresh_token": refresh, "id_token": id_token,
                        "scope": data["scope"]})
    response.headers["Cache-Control"] = "no-store"
    return response


@app.get("/userinfo")
def userinfo():
    header = request.headers.get("Authorization", "")
    claims = _verify_access_token(header[7:]) if header.startswith("Bearer ") else None
    if claims is None:
        response = make_response("", 401)
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    with engine.connect() as conn:
        user = conn.execute(USER_CLAIMS, {"id": claims["sub"]}).first()
    if user is None:
        return make_response("", 401)
    return jsonify({"sub": user.id, "email": user.email, "email_verified": user.email_verified,
                    "given_name": user.given_name, "family_name": user.family_name})

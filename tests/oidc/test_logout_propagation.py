"""OIDC Back-Channel Logout 1.0 and Front-Channel Logout 1.0: a test relying party
receives the logout tokens; signature, sid, events and no nonce are checked."""

from __future__ import annotations

import datetime as dt
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.oidc.logout_propagation import BACKOFF, EVENT, Propagator, propagate
from idp.persistence.models import AuditEvent, LogoutDelivery, SsoSession, utcnow
from tests.conftest import ISSUER
from tests.oidc.test_code_flow import exchange, sign_in


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - the standard library's name
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.received.append(parse_qs(body)["logout_token"][0])
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def relying_party():
    """A back-channel logout endpoint: ``.uri``, ``.received`` tokens, ``.status``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.status = [], 200
    server.uri = f"http://127.0.0.1:{server.server_address[1]}/backchannel-logout"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def logout_rp(client_factory, relying_party):
    return client_factory(require_consent=False,
                          post_logout_redirect_uris=["https://demarche.example.org/bye"],
                          backchannel_logout_uri=relying_party.uri)


def checked(token: str, browser, client_id: str) -> dict:
    keys = KeySet.import_key_set(browser.get("/jwks.json").json)
    decoded = jwt.decode(token, keys)
    assert decoded.header["typ"] == "logout+jwt"
    claims = decoded.claims
    assert claims["iss"] == ISSUER and claims["aud"] == client_id
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims
    assert claims["exp"] > time.time() and claims["jti"]
    return claims


def signed_in_with(browser, rp, user) -> dict:
    result, verifier, _ = sign_in(browser, rp, user)
    tokens = exchange(browser, rp, result["code"], verifier).json
    return jwt.decode(tokens["id_token"], KeySet.import_key_set(
        browser.get("/jwks.json").json)).claims | {"raw": tokens["id_token"]}


def test_logout_sends_each_client_a_logout_token(app, svc, browser, logout_rp, user,
                                                 relying_party):
    id_token = signed_in_with(browser, logout_rp, user)
    browser.get("/logout", query_string={"id_token_hint": id_token["raw"]})
    assert propagate(svc)["delivered"] == 1
    (token,) = relying_party.received
    claims = checked(token, browser, logout_rp.client_id)
    assert claims["sid"] == id_token["sid"] and claims["sub"] == id_token["sub"]
    assert propagate(svc)["delivered"] == 0  # once only
    assert "backchannel_logout_supported" in browser.get(
        "/.well-known/openid-configuration").json


def test_an_expired_session_and_a_deleted_account_are_told_too(app, svc, browser, logout_rp,
                                                               user_factory, relying_party):
    first, second = user_factory(), user_factory()
    expired = signed_in_with(browser, logout_rp, first)
    with app.app_context():
        sso = svc.db.session.get(SsoSession, expired["sid"])
        sso.expires_at = utcnow() - dt.timedelta(seconds=1)
        svc.db.session.commit()
    assert propagate(svc)["delivered"] == 1
    assert checked(relying_party.received[-1], browser, logout_rp.client_id)["sid"] == \
        expired["sid"]
    other = type(browser)(app.test_client())
    deleted = signed_in_with(other, logout_rp, second)
    with app.test_request_context():
        from idp.account.privacy import delete_account
        from idp.persistence.models import User
        delete_account(svc.db.session.get(User, second.id))
    assert propagate(svc)["delivered"] == 1
    claims = checked(relying_party.received[-1], browser, logout_rp.client_id)
    assert claims["sid"] == deleted["sid"] and claims["sub"] == deleted["sub"]


def test_a_failed_delivery_is_retried_with_backoff_then_abandoned(app, svc, browser,
                                                                  logout_rp, user,
                                                                  relying_party):
    relying_party.status = 500
    id_token = signed_in_with(browser, logout_rp, user)
    browser.get("/logout", query_string={"id_token_hint": id_token["raw"]})
    assert propagate(svc)["failed"] == 1
    with app.app_context():
        delivery = svc.db.session.scalar(select(LogoutDelivery))
        assert delivery.attempts == 1 and delivery.last_error == "HTTP 500"
        wait = (delivery.next_attempt_at - utcnow()).total_seconds()
        assert BACKOFF[0] - 5 < wait <= BACKOFF[0]
        assert svc.db.session.scalar(select(AuditEvent).where(
            AuditEvent.type == "logout.backchannel_failed"))
    assert propagate(svc) == {"queued": 0, "delivered": 0, "failed": 0, "abandoned": 0}

    def make_due():
        with app.app_context():
            svc.db.session.scalar(select(LogoutDelivery)).next_attempt_at = utcnow()
            svc.db.session.commit()
    for _ in BACKOFF[1:]:
        make_due()
        assert propagate(svc)["failed"] == 1
    make_due()
    assert propagate(svc)["abandoned"] == 1
    with app.app_context():
        assert svc.db.session.scalar(select(LogoutDelivery)).abandoned_at is not None
        assert svc.db.session.scalar(select(AuditEvent).where(
            AuditEvent.type == "logout.backchannel_abandoned"))


def test_a_retried_delivery_succeeds_when_the_client_is_back(app, svc, browser, logout_rp,
                                                             user, relying_party):
    relying_party.status = 503
    id_token = signed_in_with(browser, logout_rp, user)
    browser.get("/logout", query_string={"id_token_hint": id_token["raw"]})
    propagate(svc)
    relying_party.status = 200
    with app.app_context():
        svc.db.session.scalar(select(LogoutDelivery)).next_attempt_at = utcnow()
        svc.db.session.commit()
    assert propagate(svc)["delivered"] == 1
    assert checked(relying_party.received[-1], browser, logout_rp.client_id)["sid"] == \
        id_token["sid"]


def test_the_propagator_delivers_at_once_when_woken(app, svc, browser, logout_rp, user,
                                                    relying_party):
    id_token = signed_in_with(browser, logout_rp, user)
    propagator = Propagator(app, interval=3600)
    propagator.start()
    svc.logout_propagator = propagator
    try:
        browser.get("/logout", query_string={"id_token_hint": id_token["raw"]})
        deadline = time.monotonic() + 10
        while not relying_party.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert relying_party.received
    finally:
        svc.logout_propagator = None


def test_front_channel_logout_loads_each_clients_page_then_moves_on(browser, client_factory,
                                                                    user):
    rp = client_factory(require_consent=False,
                        post_logout_redirect_uris=["https://demarche.example.org/bye"],
                        frontchannel_logout_uri="https://demarche.example.org/fc-logout")
    id_token = signed_in_with(browser, rp, user)
    page = browser.get("/logout", query_string={
        "id_token_hint": id_token["raw"],
        "post_logout_redirect_uri": "https://demarche.example.org/bye", "state": "s1"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    frame = html.split('<iframe src="')[1].split('"')[0].replace("&amp;", "&")
    assert frame.startswith("https://demarche.example.org/fc-logout?")
    query = parse_qs(urlsplit(frame).query)
    assert query == {"iss": [ISSUER], "sid": [id_token["sid"]]}
    assert "frame-src https://demarche.example.org" in page.headers["Content-Security-Policy"]
    assert page.headers["Refresh"] == "2; url=https://demarche.example.org/bye?state=s1"

"""The token, introspection and revocation endpoints count failures per address, not
requests: a busy relying party is never throttled, a client that proved itself cannot be
blocked by failures an attacker makes it send, and guessing client credentials is."""

from __future__ import annotations

import pytest

from idp.security import ratelimit
from tests.conftest import basic_auth
from tests.security.test_bruteforce import Clock, app_fixture

app = app_fixture(rate_limits={"client_failures_per_ip": "2/minute"})
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, ratelimit)


@pytest.fixture
def service(client_factory):
    return client_factory(grant_types=["client_credentials", "refresh_token"])


def client_credentials(browser, client, **kw):
    return browser.post("/token", headers=basic_auth(client),
                        data={"grant_type": "client_credentials"}, **kw)


def wrong_secret(client):
    return basic_auth(client.__class__(client.client_id, "not-the-secret", client.redirect_uri))


def test_successful_requests_are_never_limited(browser, service, clock):
    statuses = [client_credentials(browser, service).status_code for _ in range(6)]
    assert statuses == [200] * 6


def test_a_proven_clients_failures_do_not_count(browser, service, clock):
    # Made-up refresh tokens, as an attacker could make a démarche's backend send.
    for _ in range(4):
        response = browser.post("/token", headers=basic_auth(service), data={
            "grant_type": "refresh_token", "refresh_token": "made-up"})
        assert response.status_code == 400
        assert response.json["error"] == "invalid_grant"
    assert client_credentials(browser, service).status_code == 200


def test_wrong_client_credentials_are_limited_per_address(browser, service, clock):
    for _ in range(2):
        response = browser.post("/token", headers=wrong_secret(service),
                                data={"grant_type": "client_credentials"})
        assert response.status_code == 401
    # The second failure reached the limit: even the right secret waits now.
    blocked = client_credentials(browser, service)
    assert blocked.status_code == 429
    assert blocked.json["error"] == "slow_down"
    assert "Trop de demandes" in blocked.json["error_description"]
    assert 0 < int(blocked.headers["Retry-After"]) <= 120
    # Introspection and revocation share the limit: same address, same guesser.
    assert browser.post("/introspect", headers=basic_auth(service),
                        data={"token": "x"}).status_code == 429
    assert client_credentials(browser, service, environ_base=ELSEWHERE).status_code == 200
    clock.advance(121)
    assert client_credentials(browser, service).status_code == 200


def test_introspection_failures_count_too(browser, service, clock):
    for _ in range(2):
        assert browser.post("/introspect", headers=wrong_secret(service),
                            data={"token": "x"}).status_code == 401
    assert client_credentials(browser, service).status_code == 429


def test_requests_no_client_vouches_for_count(browser, service, clock):
    for _ in range(2):
        response = browser.post("/token", data={"grant_type": "authorization_code",
                                                "code": "x", "client_id": service.client_id})
        assert response.status_code in (400, 401)
    assert client_credentials(browser, service).status_code == 429


def test_another_process_learns_of_the_block_at_the_next_failure(app, browser, service,
                                                                   clock):
    for _ in range(2):
        browser.post("/token", headers=wrong_secret(service),
                     data={"grant_type": "client_credentials"})
    # A process that has not seen these failures (its own memory is empty) lets a good
    # request through, and blocks at the first failure: the count is shared.
    app.extensions["idp"].client_failures.blocks._until.clear()  # noqa: SLF001
    assert client_credentials(browser, service).status_code == 200
    assert browser.post("/token", headers=wrong_secret(service),
                        data={"grant_type": "client_credentials"}).status_code == 401
    assert client_credentials(browser, service).status_code == 429


def test_local_blocks_expire_and_stay_bounded():
    blocks = ratelimit.LocalBlocks(max_entries=3)
    blocks.block("a", until=110.0, now=100.0)
    assert blocks.wait("a", 100.0) == 10
    assert blocks.wait("a", 110.0) == 0
    assert len(blocks) == 0
    for n, subject in enumerate("bcde"):
        blocks.block(subject, until=200.0 + n, now=100.0)
    # Room was made by dropping the block ending soonest.
    assert len(blocks) == 3
    assert blocks.wait("b", 100.0) == 0
    assert blocks.wait("e", 100.0) == 103
    # A later block never shortens an earlier, longer one.
    blocks.block("e", until=150.0, now=100.0)
    assert blocks.wait("e", 100.0) == 103

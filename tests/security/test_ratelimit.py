"""Per-IP limits on the routes attackers repeat: 429, French text, Retry-After, JSON for
the API, and no more requests than the limit under concurrent requests."""

from __future__ import annotations

import pytest

from idp.security import ratelimit
from tests.security.test_bruteforce import (Clock, app_fixture, attempt, fire_at_once,
                                            text_of)
from tests.support import PASSWORD

LIMITS = {"login_per_ip": "3/minute", "register_per_ip": "2/hour", "recovery_per_ip": "2/hour",
          "client_failures_per_ip": "2/minute", "captcha_after_failures": 100,
          "account_failures_before_delay": 100, "account_block_after": 100}


app = app_fixture(rate_limits=LIMITS)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, ratelimit)


def test_login_posts_over_the_limit_get_429_in_french(browser, user, clock):
    for _ in range(3):
        assert attempt(browser, user.email, "wrong password here").status_code == 400
    response = attempt(browser, user.email, PASSWORD)
    assert response.status_code == 429
    assert response.mimetype == "text/html"
    assert 0 < int(response.headers["Retry-After"]) <= 120
    body = text_of(response)
    assert "Trop de demandes" in body
    assert "Patientez" in body
    # Showing the form is not counted.
    assert browser.get("/login").status_code == 200


def test_the_limit_is_per_ip_and_the_window_slides(browser, new_browser, user, clock):
    for _ in range(3):
        attempt(browser, user.email, "wrong password here")
    assert attempt(browser, user.email, PASSWORD).status_code == 429
    elsewhere = {"REMOTE_ADDR": "203.0.113.9"}
    assert attempt(new_browser(), user.email, PASSWORD, environ=elsewhere).status_code == 302
    # Two windows later, nothing of the burst weighs any more.
    clock.advance(121)
    assert attempt(browser, user.email, PASSWORD).status_code == 302


def test_ipv6_addresses_count_per_64_prefix(browser, user):
    for n in range(3):
        env = {"REMOTE_ADDR": f"2001:db8:1:2::{n + 1}"}
        assert attempt(browser, user.email, "wrong password here", environ=env).status_code == 400
    env = {"REMOTE_ADDR": "2001:db8:1:2:ffff::1"}
    assert attempt(browser, user.email, PASSWORD, environ=env).status_code == 429
    assert ratelimit.ip_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_token_endpoint_answers_json_slow_down(app, browser, clock):
    statuses = [browser.post("/token", data={"grant_type": "authorization_code", "code": "x"})
                for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] != [429, 429]
    response = statuses[2]
    assert response.status_code == 429
    assert response.is_json
    assert response.json["error"] == "slow_down"
    assert "Trop de demandes" in response.json["error_description"]
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("path", ["/inscription", "/mot-de-passe-perdu/adresse"])
def test_registration_and_recovery_are_limited(browser, clock, path):
    # Counted before anything else (CSRF included): a sloppy robot pays like a careful one.
    codes = [browser.post(path, data={"email": "x@example.org"}).status_code
             for _ in range(3)]
    assert 429 not in codes[:2] and codes[2] == 429, codes
    assert "Trop de demandes" in text_of(browser.post(path, data={}))
    assert browser.get(path).status_code != 429


def test_rules_cover_the_sensitive_endpoints():
    assert ratelimit.rules_for("login.start") == ["login_per_ip"]
    assert ratelimit.rules_for("registration.start") == ["register_per_ip"]
    assert ratelimit.rules_for("recovery.email") == ["recovery_per_ip"]
    assert ratelimit.rules_for("recovery.code") == ["code_verify_per_ip"]
    # Counted by their failures instead (tests/security/test_client_failure_limit.py).
    assert ratelimit.rules_for("oidc.token") == []
    assert ratelimit.rules_for("account.contact") == ["code_send_per_ip"]
    assert ratelimit.rules_for("account.contact_resend") == ["code_send_per_ip"]
    assert ratelimit.rules_for("account.contact_code") == ["code_verify_per_ip"]
    assert ratelimit.rules_for("account.confirm_login_email") == ["code_verify_per_ip"]
    assert ratelimit.rules_for("mfa.challenge") == ["code_verify_per_ip"]
    assert ratelimit.rules_for("mfa.lost") == ["code_verify_per_ip"]
    assert ratelimit.rules_for("account.mfa_enable") == ["code_verify_per_ip"]
    assert ratelimit.rules_for("account.mfa_disable") == ["code_verify_per_ip"]
    assert ratelimit.rules_for("registration.resend_for_login") == ["code_send_per_ip"]
    assert ratelimit.rules_for("registration.confirm_email") == ["code_verify_per_ip"]
    assert ratelimit.rules_for("account.index") == []
    assert ratelimit.parse_limits("5/hour, 10/day") == [ratelimit.Limit(5, 3600),
                                                        ratelimit.Limit(10, 86400)]
    with pytest.raises(ValueError):
        ratelimit.parse_limits("many per minute")


def test_concurrent_requests_never_exceed_the_limit(app, new_browser):
    """Sixteen browsers post at the same instant against a limit of 3 per minute."""
    browsers = [new_browser() for _ in range(16)]
    pages = [b.get("/login") for b in browsers]
    # One address each: only the per-IP limit is in play.
    responses = fire_at_once(browsers, pages, lambda n: {
        "email": f"someone{n}@example.org", "password": "wrong password here"})
    statuses = [429 if r.status_code == 429 and "Trop de demandes" in text_of(r)
                else r.status_code for r in responses]
    assert len(statuses) == 16
    assert statuses.count(429) == 13, statuses
    assert statuses.count(400) == 3, statuses

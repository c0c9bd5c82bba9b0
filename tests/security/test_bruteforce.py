"""Password guessing against one account, from the outside: growing delay, temporary
block, the owner told once, expiry, reset, captcha, concurrent attempts."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from idp.messaging.outbox import read_outbox
from idp.persistence.models import AuditEvent
from idp.security import lockout, ratelimit
from tests.conftest import _wipe, _wipe_redis
from tests.support import PASSWORD, Browser, form_with

WRONG = "not the right password at all"
CAPTCHA_OK = {"captcha_payload": "test-pass"}

# Small numbers: 3 free failures, then 2 s, 4 s, 8 s (max); blocked at the 6th failure.
FAST_LIMITS = {"account_failures_before_delay": 3, "account_delay_base": 2.0,
               "account_delay_max": 8.0, "account_block_after": 6,
               "account_block_duration": 60, "account_block_window": 3600,
               "captcha_after_failures": 3, "login_per_ip": "1000/minute"}


def fresh_app(make_app, **overrides):
    """An app with the test captcha, on a wiped database and store."""
    overrides.setdefault("registration", {"captcha_backend": "test"})
    application = make_app(**overrides)
    _wipe(application.extensions["idp"].db)
    _wipe_redis()
    return application


def app_fixture(**overrides):
    """The module's ``app`` fixture: :func:`fresh_app` with these settings."""
    @pytest.fixture
    def app(make_app):
        application = fresh_app(make_app, **overrides)
        yield application
        application.extensions["idp"].db.remove()
    return app


def fire_at_once(browsers, pages, data_for) -> list:
    """Each browser posts its page's form (fields + ``data_for(n)``), all at the same
    instant, from its own thread. The responses, in completion order."""
    barrier = threading.Barrier(len(browsers))
    responses = []
    lock = threading.Lock()

    def fire(n, browser, page):
        form = form_with(page.data, "email")
        data = {**form["fields"], **data_for(n)}
        barrier.wait()
        response = browser.post(form["action"], data=data)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=fire, args=(n, b, p))
               for n, (b, p) in enumerate(zip(browsers, pages))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


class Clock:
    """A clock the tests move forward, for the modules that read ``clock()``."""

    def __init__(self, monkeypatch, *modules) -> None:
        import time

        # 06:00 UTC today: far from the boundaries of the day-long windows (fixed UTC
        # days), which a test moving the clock by hours would otherwise cross at night.
        self.now = time.time() // 86400 * 86400 + 6 * 3600
        for module in modules:
            monkeypatch.setattr(module, "clock", self)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def attempt(browser: Browser, email: str, password: str, extra: dict | None = None,
            environ: dict | None = None):
    page = browser.get("/login", environ_base=environ or {})
    assert page.status_code == 200, page.status_code
    form = form_with(page.data, "email")
    data = {**form["fields"], "email": email, "password": password, **(extra or {})}
    return browser.post(form["action"], data=data, environ_base=environ or {})


def text_of(response) -> str:
    return response.get_data(as_text=True)


app = app_fixture(rate_limits=FAST_LIMITS)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, lockout, ratelimit)


@pytest.fixture
def outbox(svc):
    def read(to: str) -> list[dict]:
        svc.messenger.drain()  # the account-locked notice is queued
        folder = svc.settings.resolve_path(svc.settings.messaging.outbox_dir)
        return [m for m in read_outbox(folder) if m["to"] == to]
    return read


def audit_events(app, svc, type_: str) -> list[AuditEvent]:
    with app.app_context():
        events = list(svc.db.session.scalars(
            select(AuditEvent).where(AuditEvent.type == type_)
            .order_by(AuditEvent.created_at)))
        svc.db.session.remove()
        return events


def test_delay_grows_then_the_account_is_blocked_then_the_block_expires(
        app, svc, browser, user, clock, outbox):
    for _ in range(3):
        response = attempt(browser, user.email, WRONG, CAPTCHA_OK)
        assert response.status_code == 400
        assert "Adresse e-mail ou mot de passe incorrect." in text_of(response)
    for expected_delay in (2, 4, 8):
        # Too early, even with the right password: "try again in N s", at once.
        early = attempt(browser, user.email, PASSWORD, CAPTCHA_OK)
        assert early.status_code == 429
        assert early.headers["Retry-After"] == str(expected_delay)
        assert f"Réessayez dans {expected_delay} secondes" in text_of(early)
        clock.advance(expected_delay + 0.1)
        response = attempt(browser, user.email, WRONG, CAPTCHA_OK)
        assert response.status_code == 400
    # 6 failures: blocked for account_block_duration, the right password included.
    blocked = attempt(browser, user.email, PASSWORD, CAPTCHA_OK)
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "60"
    assert "la connexion est suspendue pendant 1 minute" in text_of(blocked)
    assert "réinitialisez votre mot de passe" in text_of(blocked)
    clock.advance(30)
    assert attempt(browser, user.email, PASSWORD, CAPTCHA_OK).status_code == 429
    # The block expires by itself: never a permanent lockout.
    clock.advance(31)
    response = attempt(browser, user.email, PASSWORD, CAPTCHA_OK)
    assert response.status_code == 302, text_of(response)
    assert [e.details["reason"] for e in audit_events(app, svc, "login.failure")].count(
        "bad_password") == 6
    locked = audit_events(app, svc, "account.locked")
    assert [e.user_id for e in locked] == [user.id]


def test_the_owner_is_told_once_per_block(app, svc, browser, user, clock, outbox):
    for _ in range(6):
        response = attempt(browser, user.email, WRONG, CAPTCHA_OK)
        response.close()  # the notice leaves after the answer
        clock.advance(10)
    messages = outbox(user.email)
    assert len(messages) == 1
    assert "bloqué" in messages[0]["subject"]
    assert "/mot-de-passe-perdu" in messages[0]["text"]
    # Still failing after the block: blocked again at once, not told again.
    clock.advance(61)
    again = attempt(browser, user.email, WRONG, CAPTCHA_OK)
    again.close()
    assert again.status_code == 400
    assert attempt(browser, user.email, PASSWORD, CAPTCHA_OK).status_code == 429
    assert len(outbox(user.email)) == 1
    assert len(audit_events(app, svc, "account.locked")) == 2


def test_password_reset_clears_the_block(app, svc, browser, user, clock):
    for _ in range(6):
        attempt(browser, user.email, WRONG, CAPTCHA_OK)
        clock.advance(10)
    assert attempt(browser, user.email, PASSWORD, CAPTCHA_OK).status_code == 429
    # What the recovery flow calls once the new password is set.
    lockout.clear(svc.kv, user.email)
    response = attempt(browser, user.email, PASSWORD, CAPTCHA_OK)
    assert response.status_code == 302


def test_a_successful_login_resets_the_failures(app, browser, new_browser, user, clock):
    for _ in range(2):
        attempt(browser, user.email, WRONG)
    assert attempt(browser, user.email, PASSWORD).status_code == 302
    other = new_browser()
    for _ in range(2):
        assert attempt(other, user.email, WRONG, CAPTCHA_OK).status_code == 400
    # Two failures since the success: no delay yet.
    response = attempt(other, user.email, WRONG, CAPTCHA_OK)
    assert response.status_code == 400


def test_unknown_addresses_are_slowed_down_the_same_way(app, browser, clock):
    for _ in range(3):
        assert attempt(browser, "nobody@example.org", WRONG, CAPTCHA_OK).status_code == 400
    early = attempt(browser, "nobody@example.org", WRONG, CAPTCHA_OK)
    assert early.status_code == 429
    assert early.headers["Retry-After"] == "2"


def test_captcha_is_required_after_three_failures(app, svc, browser, user, clock):
    page = browser.get("/login")
    assert b"captcha_answer" not in page.data
    for _ in range(3):
        attempt(browser, user.email, WRONG)
    clock.advance(3)
    # The form now carries the anti-robot check...
    page = browser.get("/login")
    assert b"captcha_answer" in page.data
    # ...and the right password alone is not enough.
    refused = attempt(browser, user.email, PASSWORD)
    assert refused.status_code == 400
    assert "anti-robot" in text_of(refused)
    assert b"captcha_answer" in refused.data
    assert "captcha" in [e.details["reason"] for e in audit_events(app, svc, "login.failure")]
    response = attempt(browser, user.email, PASSWORD, CAPTCHA_OK)
    assert response.status_code == 302


def test_captcha_per_ip_after_failures_on_different_addresses(app, user_factory, new_browser,
                                                             clock):
    attacker = new_browser()
    for n in range(3):
        attempt(attacker, f"victim{n}@example.org", WRONG)
    assert b"captcha_answer" in attacker.get("/login").data
    # Another address gets the plain form, and a fresh account may still sign in there.
    elsewhere = {"REMOTE_ADDR": "198.51.100.7"}
    other = new_browser()
    assert b"captcha_answer" not in other.get("/login", environ_base=elsewhere).data
    someone = user_factory()
    assert attempt(other, someone.email, PASSWORD, environ=elsewhere).status_code == 302
    refused = attempt(attacker, someone.email, PASSWORD)
    assert refused.status_code == 400


def test_concurrent_guesses_get_no_more_than_the_free_attempts(app, user, new_browser):
    """Twelve browsers fire a wrong password at the same instant: only the three free
    failures are checked, every other attempt is told to wait."""
    browsers = [new_browser() for _ in range(12)]
    pages = [b.get("/login") for b in browsers]
    statuses = [r.status_code for r in fire_at_once(
        browsers, pages, lambda n: {"email": user.email, "password": WRONG, **CAPTCHA_OK})]
    assert sorted(set(statuses)) <= [400, 429], statuses
    assert 1 <= statuses.count(400) <= 3, statuses
    assert len(statuses) == 12


def test_reauthentication_counts_against_the_account(app, browser, user, clock):
    assert attempt(browser, user.email, PASSWORD).status_code == 302
    page = browser.get("/login/reauth")
    for _ in range(3):
        form = form_with(page.data, "password")
        response = browser.post(form["action"] or "/login/reauth",
                                data={**form["fields"], "password": WRONG})
        assert response.status_code == 400
    form = form_with(page.data, "password")
    early = browser.post(form["action"] or "/login/reauth",
                         data={**form["fields"], "password": PASSWORD})
    assert early.status_code == 429
    assert early.headers["Retry-After"] == "2"

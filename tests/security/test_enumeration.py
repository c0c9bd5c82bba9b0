"""Whether an address has an account must not show in the login's answers: same page,
same status, same time (with the production argon2 parameters), and the same delays,
blocks and captcha for unknown addresses as for known ones."""

from __future__ import annotations

import re
import statistics
import time

from tests.security.test_bruteforce import app_fixture, attempt, fresh_app, text_of
from tests.support import form_with

WRONG = "not the right password at all"
UNKNOWN = "personne.inconnue@example.org"
# The parameters of config/idp.toml's defaults (the suite's own are much cheaper).
PRODUCTION_ARGON2 = {"argon2_memory_kib": 19456, "argon2_time_cost": 2}
# No delay, block, captcha or per-IP limit in the way of repeated measurements.
NOTHING_IN_THE_WAY = {"login_per_ip": "100000/minute", "captcha_after_failures": 100_000,
                      "account_failures_before_delay": 100_000,
                      "account_block_after": 100_000}


def normalised(response) -> str:
    """The page without what differs on every request anyway (tokens, flow ids)."""
    html = text_of(response)
    html = re.sub(r'name="csrf_token"[^>]*value="[^"]+"', 'name="csrf_token"', html)
    html = re.sub(r"flow=[A-Za-z0-9_-]+", "flow=X", html)
    html = re.sub(r'value="[^"]*@example\.org"', 'value="EMAIL"', html)
    return re.sub(r"nonce-[A-Za-z0-9+/=_-]+", "nonce-X", html)


app = app_fixture(rate_limits={
    "account_failures_before_delay": 3, "account_delay_base": 2.0,
    "account_block_after": 4, "account_block_duration": 60,
    "captcha_after_failures": 3, "login_per_ip": "1000/minute"})


def test_same_page_and_status_for_unknown_address_and_wrong_password(user, new_browser):
    known = attempt(new_browser(), user.email, WRONG)
    unknown = attempt(new_browser(), UNKNOWN, WRONG)
    assert known.status_code == unknown.status_code == 400
    assert normalised(known) == normalised(unknown)
    assert known.headers.get("Retry-After") == unknown.headers.get("Retry-After")


def test_same_delays_blocks_and_captcha_for_unknown_addresses(user, new_browser):
    """The whole escalation, side by side, gives identical answers."""
    def escalate(email, ip):
        browser = new_browser()
        env = {"REMOTE_ADDR": ip}
        answers = []
        for extra in ({}, {}, {}, {}, {"captcha_payload": "test-pass"},
                      {"captcha_payload": "test-pass"}):
            response = attempt(browser, email, WRONG, extra, environ=env)
            answers.append((response.status_code, response.headers.get("Retry-After"),
                            normalised(response).replace(email, "EMAIL")))
        return answers

    known = escalate(user.email, "192.0.2.10")
    unknown = escalate(UNKNOWN, "192.0.2.11")
    statuses = [status for status, _, _ in known]
    assert 429 in statuses and "captcha_answer" in known[-1][2]
    assert known == unknown


def test_same_time_for_unknown_address_and_wrong_password(make_app, user_factory):
    """Median of interleaved logins, production argon2 cost: no usable difference."""
    application = fresh_app(make_app, passwords=PRODUCTION_ARGON2,
                            rate_limits=NOTHING_IN_THE_WAY)
    client = application.test_client()
    svc = application.extensions["idp"]
    with application.app_context():
        from idp.identity.users import create_user

        user = create_user(svc.db.session, svc.passwords, email="mesure@example.org",
                           password="correct horse battery staple", email_verified=True)
        svc.db.session.commit()
        svc.db.session.remove()

    def timed(email: str) -> float:
        page = client.get("/login")
        form = form_with(page.data, "email")
        data = {**form["fields"], "email": email, "password": WRONG}
        started = time.perf_counter()
        response = client.post(form["action"], data=data)
        elapsed = time.perf_counter() - started
        assert response.status_code == 400
        return elapsed

    for _ in range(3):  # warm-up: caches, connections, first argon2 allocation
        timed(user.email)
        timed(UNKNOWN)
    known, unknown = [], []
    for n in range(21):
        # Interleaved, alternating which goes first: drifts hit both series alike.
        order = (user.email, UNKNOWN) if n % 2 else (UNKNOWN, user.email)
        for email in order:
            (known if email == user.email else unknown).append(timed(email))
    m_known, m_unknown = statistics.median(known), statistics.median(unknown)
    difference = abs(m_known - m_unknown)
    print(f"\nlogin timing, median of {len(known)}: known address + wrong password "
          f"{m_known * 1000:.1f} ms, unknown address {m_unknown * 1000:.1f} ms, "
          f"difference {difference * 1000:.1f} ms ({difference / m_known:.1%})")
    # A real argon2 verification happens in both cases (it dominates the time)...
    assert min(m_known, m_unknown) > 0.005
    # ...and what remains differs by less than the noise of a network.
    assert difference < max(0.25 * m_known, 0.005), (m_known, m_unknown)

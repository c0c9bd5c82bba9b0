"""SMS cost money and can harass: foreign numbers, per-number and per-account throttles,
and a daily budget for the whole service."""

from __future__ import annotations

import pytest

from idp.messaging.outbox import read_outbox
from idp.messaging.sms import SmsMessage
from idp.security import sms_guard
from tests.security.test_bruteforce import Clock, app_fixture
from tests.support import form_with

FRENCH_MOBILE = "+33612345678"
CALEDONIAN_MOBILE = "+687751234"
UK_MOBILE = "+447400123456"


app = app_fixture(messaging={
    "sms_allowed_regions": ["FR", "NC"], "sms_per_destination": "2/hour, 3/day",
    "sms_per_account": "3/hour", "sms_daily_budget": 5})


@pytest.fixture
def clock(monkeypatch):
    from idp.security import ratelimit

    return Clock(monkeypatch, sms_guard, ratelimit)


def sms_outbox(svc, to=None):
    folder = svc.settings.resolve_path(svc.settings.messaging.outbox_dir)
    return [m for m in read_outbox(folder) if m["kind"] == "sms" and (to is None or m["to"] == to)]


def send(app, svc, to: str, account: str | None = None) -> tuple[bool, str | None]:
    """One SMS, as a view would send it (one request each)."""
    with app.test_request_context("/"):
        if account:
            sms_guard.for_account(account)
        reason = svc.messenger.check_sms(to)
        return svc.messenger.send_sms(SmsMessage(to, "Votre code : 123456")), reason


def test_foreign_numbers_are_refused_in_french(app, svc):
    sent, reason = send(app, svc, UK_MOBILE)
    assert not sent
    assert "France" in reason and "Nouvelle-Calédonie" in reason
    assert sms_outbox(svc) == []
    assert send(app, svc, CALEDONIAN_MOBILE) == (True, None)


def test_one_number_gets_a_limited_number_of_sms(app, svc, clock):
    assert send(app, svc, FRENCH_MOBILE) == (True, None)
    assert send(app, svc, FRENCH_MOBILE) == (True, None)
    sent, reason = send(app, svc, FRENCH_MOBILE)
    assert not sent
    assert "Trop de SMS ont été envoyés à ce numéro" in reason
    assert len(sms_outbox(svc, FRENCH_MOBILE)) == 2
    # Another number is not affected; the first one may receive again later (day limit).
    assert send(app, svc, "+33698765432")[0]
    clock.advance(2 * 3600 + 1)
    assert send(app, svc, FRENCH_MOBILE)[0]
    assert not send(app, svc, FRENCH_MOBILE)[0]  # 3 per day


def test_one_account_gets_a_limited_number_of_sms(app, svc, clock):
    numbers = ["+33611111111", "+33622222222", "+33633333333", "+33644444444"]
    results = [send(app, svc, n, account="account-1") for n in numbers]
    assert [sent for sent, _ in results] == [True, True, True, False]
    assert "Trop de SMS ont été demandés pour ce compte" in results[3][1]
    assert send(app, svc, numbers[3], account="account-2")[0]


def test_the_daily_budget_stops_every_sms_until_the_next_day(app, svc, clock):
    numbers = [f"+3361234{n:04d}" for n in range(7)]
    results = [send(app, svc, n) for n in numbers]
    assert [sent for sent, _ in results] == [True] * 5 + [False] * 2
    assert "momentanément indisponible" in results[5][1]
    clock.advance(86400)
    assert send(app, svc, numbers[6])[0]


def test_recovery_codes_fall_back_to_email_once_the_number_had_enough(app, svc, browser,
                                                                   user_factory):
    """From the outside: asking again and again for a recovery code by SMS."""
    owner = user_factory(phone_number=FRENCH_MOBILE, phone_number_verified=True,
                         preferred_contact="sms")
    for _ in range(3):
        page = browser.get("/mot-de-passe-perdu")
        form = form_with(page.data, "csrf_token")
        page = browser.post(form["action"], data={**form["fields"], "population": "usager"})
        page = browser.get(page.headers["Location"])
        form = form_with(page.data, "email")
        response = browser.post(form["action"], data={**form["fields"], "email": owner.email,
                                                      "captcha_payload": "test-pass"})
        assert response.status_code in (302, 303), response.status_code
    assert len(sms_outbox(svc, FRENCH_MOBILE)) == 2
    folder = svc.settings.resolve_path(svc.settings.messaging.outbox_dir)
    emails = [m for m in read_outbox(folder) if m["kind"] == "email" and m["to"] == owner.email]
    assert len(emails) == 1

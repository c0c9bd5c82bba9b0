"""Messages cost money and can harass: foreign numbers, per-destination and per-account
caps on codes and links (SMS and e-mail), a daily SMS budget whose last part is kept for
sign-in, and security notices that no cap silences."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from idp.messaging.base import Purpose
from idp.messaging.email import EmailMessage
from idp.messaging.outbox import read_outbox
from idp.messaging.sms import SmsMessage
from idp.persistence.models import AuditEvent, Consumable
from idp.security import message_guard
from tests.security.test_bruteforce import Clock, app_fixture
from tests.support import Browser, form_with

FRENCH_MOBILE = "+33612345678"
CALEDONIAN_MOBILE = "+687751234"
UK_MOBILE = "+447400123456"


app = app_fixture(messaging={
    "sms_allowed_regions": ["FR", "NC"], "sms_per_destination": "2/hour, 3/day",
    "sms_per_account": "3/hour", "sms_daily_budget": 5, "sms_budget_reserve_percent": 20,
    "email_per_destination": "3/hour, 5/day", "email_per_account": "4/hour"},
    rate_limits={"recovery_per_ip": "1000/hour", "register_per_ip": "1000/hour"})


@pytest.fixture
def clock(monkeypatch):
    from idp.security import ratelimit

    return Clock(monkeypatch, message_guard, ratelimit)


def sms_outbox(svc, to=None):
    folder = svc.settings.resolve_path(svc.settings.messaging.outbox_dir)
    return [m for m in read_outbox(folder) if m["kind"] == "sms" and (to is None or m["to"] == to)]


def send(app, svc, to: str, account: str | None = None,
         purpose: Purpose = Purpose.CODE) -> tuple[bool, str | None]:
    """One SMS, as a view would send it (one request each)."""
    with app.test_request_context("/"):
        if account:
            message_guard.for_account(account)
        reason = svc.messenger.check_sms(to, purpose)
        return svc.messenger.send_sms(SmsMessage(to, "Votre code : 123456"), purpose), reason


def send_email(app, svc, to: str, account: str | None = None,
               purpose: Purpose = Purpose.CODE) -> tuple[bool, str | None]:
    """One e-mail, as a view would send it (one request each)."""
    with app.test_request_context("/"):
        if account:
            message_guard.for_account(account)
        reason = svc.messenger.check_email(to, purpose)
        return svc.messenger.send_email(EmailMessage(to, "Votre code", "123456"), purpose), \
            reason


def emails_to(svc, to):
    folder = svc.settings.resolve_path(svc.settings.messaging.outbox_dir)
    return [m for m in read_outbox(folder) if m["kind"] == "email" and m["to"] == to]


def recovery_email_step(browser, address):
    """Through "mot de passe perdu" up to the address, which is posted."""
    page = browser.get("/mot-de-passe-perdu")
    form = form_with(page.data, "csrf_token")
    page = browser.post(form["action"], data={**form["fields"], "population": "usager"})
    page = browser.get(page.headers["Location"])
    form = form_with(page.data, "email")
    return browser.post(form["action"], data={**form["fields"], "email": address,
                                              "captcha_payload": "test-pass"})


def audit_details(app, svc, type_):
    with app.app_context():
        rows = list(svc.db.session.scalars(select(AuditEvent).where(AuditEvent.type == type_)
                                           .order_by(AuditEvent.created_at)))
        svc.db.session.remove()
        return [row.details for row in rows]


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


def test_the_daily_budget_keeps_a_reserve_for_sign_in_and_stops_at_its_end(app, svc, clock):
    """Review 2026-12, finding 4: the budget spent through codes (many accounts adding
    phone numbers) stopped SMS for everyone, recovery codes included. 20 % of 5 is kept:
    codes stop at 4, and codes refused there do not eat the reserve."""
    numbers = iter(f"+3361234{n:04d}" for n in range(20))
    codes = [send(app, svc, next(numbers)) for _ in range(8)]
    assert [sent for sent, _ in codes] == [True] * 4 + [False] * 4
    assert "momentanément indisponible" in codes[4][1]
    recovery = [send(app, svc, next(numbers), purpose=Purpose.SIGN_IN) for _ in range(2)]
    assert [sent for sent, _ in recovery] == [True, False]
    assert not send(app, svc, next(numbers), purpose=Purpose.NOTICE)[0]
    clock.advance(86400)
    assert send(app, svc, next(numbers))[0]


def test_security_notices_by_sms_are_not_capped_per_number(app, svc, clock):
    assert send(app, svc, FRENCH_MOBILE)[0] and send(app, svc, FRENCH_MOBILE)[0]
    assert not send(app, svc, FRENCH_MOBILE)[0]
    assert send(app, svc, FRENCH_MOBILE, purpose=Purpose.NOTICE) == (True, None)


def test_codes_by_email_are_capped_per_address_and_per_account(app, svc, clock):
    results = [send_email(app, svc, "victime@example.org") for _ in range(4)]
    assert [sent for sent, _ in results] == [True] * 3 + [False]
    assert "Trop de messages ont été envoyés à cette adresse" in results[3][1]
    assert "Réessayez dans" in results[3][1]
    assert len(emails_to(svc, "victime@example.org")) == 3
    # A security notice still reaches the address.
    assert send_email(app, svc, "victime@example.org", purpose=Purpose.NOTICE) == (True, None)
    # Other addresses, asked for by one account: 4 per hour.
    sent = [send_email(app, svc, f"autre{n}@example.org", account="account-1")[0]
            for n in range(5)]
    assert sent == [True] * 4 + [False]
    assert send_email(app, svc, "autre9@example.org", account="account-2")[0]
    clock.advance(3600 * 2)
    assert send_email(app, svc, "victime@example.org")[0]


def test_recovery_emails_to_one_address_are_capped_across_flows(app, svc, user_factory,
                                                                 new_browser):
    """Review 2026-12, finding 4: each new flow could send 4 more e-mails to an address,
    10 flows an hour from one IP. Now the fourth recovery of an hour is refused next to
    the field, for an address with an account as for one without, and nothing is sent."""
    owner = user_factory(email="victime@example.org")
    for _ in range(3):
        assert recovery_email_step(new_browser(), owner.email).status_code == 303
    assert len(emails_to(svc, owner.email)) == 3
    refused = recovery_email_step(new_browser(), owner.email)
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "Trop de messages ont été envoyés à cette adresse e-mail récemment" in page
    assert 'href="#email"' in page
    assert len(emails_to(svc, owner.email)) == 3
    for _ in range(3):
        assert recovery_email_step(new_browser(), "personne@example.org").status_code == 303
    unknown = recovery_email_step(new_browser(), "personne@example.org")
    assert unknown.status_code == 400

    def normalised(html, address, flow):
        html = re.sub(r'name="csrf_token"[^>]*value="[^"]+"', "CSRF", html)
        return html.replace(address, "ADDRESS").replace(flow, "FLOW")

    assert normalised(unknown.get_data(as_text=True), "personne@example.org",
                      unknown.request.args["flow"]) == \
        normalised(page, owner.email, refused.request.args["flow"])


def test_account_exists_emails_are_capped(app, svc, user_factory, new_browser):
    """Registering someone's address again and again mails its owner each time."""
    owner = user_factory(email="victime@example.org")
    for _ in range(5):
        browser = new_browser()
        page = browser.get("/inscription")
        form = form_with(page.data, "given_name")
        response = browser.post(form["action"], data={
            **form["fields"], "email": owner.email, "given_name": "A", "family_name": "B",
            "phone": "06 12 34 56 78", "password": "la mer est calme ce matin sur le lagon",
            "password_confirm": "la mer est calme ce matin sur le lagon",
            "accept_terms": "y", "captcha_payload": "test-pass"})
        assert response.status_code == 303
    assert len(emails_to(svc, owner.email)) == 3


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
    (email,) = emails_to(svc, owner.email)
    # Told, with the e-mail's lifetime (not the SMS one), and audited as it happened.
    assert "le SMS n'a pas pu être envoyé" in email["text"]
    assert "expirent dans 60 minutes" in email["text"]
    with app.app_context():
        latest = svc.db.session.scalars(select(Consumable).where(
            Consumable.kind == "recovery_code").order_by(Consumable.created_at.desc())).first()
        assert latest.destination == f"email:{owner.email}"
        assert round((latest.expires_at - latest.created_at) / dt.timedelta(minutes=1)) == 60
        svc.db.session.remove()
    channels = [(d.get("channel"), d.get("sms_unavailable"))
                for d in audit_details(app, svc, "recovery.code_sent")]
    assert channels == [("sms", None), ("sms", None), ("email", "refused")]


def test_recovery_never_goes_by_sms_while_the_login_address_is_unverified(
        app, svc, browser, user_factory):
    """Review 2026-12, finding 3: whoever registered someone else's address could add his
    own phone, choose SMS and receive the address's recovery codes."""
    creator = user_factory(email="victime@example.org", email_verified=False,
                           phone_number=FRENCH_MOBILE, phone_number_verified=True,
                           preferred_contact="sms")
    assert recovery_email_step(browser, creator.email).status_code == 303
    assert sms_outbox(svc) == []
    assert len(emails_to(svc, creator.email)) == 1

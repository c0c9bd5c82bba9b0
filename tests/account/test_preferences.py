"""Préférences: notifications, preferred contact mode, language."""

from __future__ import annotations

from tests.account.conftest import load_user, text
from tests.account.test_contact import PHONE_FR_E164, enter_code, start
from tests.account.test_security import change_password


def save(browser, **values):
    page = browser.get("/compte/preferences")
    data = {"preferred_contact": "email", "locale": "fr", **values}
    return browser.submit(page, "preferred_contact", data)


def test_notifications_off_and_english(logged_in, user, svc):
    response = save(logged_in, notifications_email="", locale="en")
    # an unchecked box is not sent at all
    assert response.status_code == 302
    saved = load_user(svc, user.id)
    assert saved.notifications_email is False and saved.locale == "en"
    page = logged_in.get("/compte/preferences")
    assert '<html lang="en">' in text(page)


def test_sms_needs_a_verified_phone(logged_in, user, svc):
    response = save(logged_in, preferred_contact="sms", notifications_email="y")
    assert response.status_code == 400
    html = text(response)
    assert "validez-le" in html and 'href="#preferred_contact"' in html
    assert load_user(svc, user.id).preferred_contact == "email"


def test_bad_choice_is_refused(logged_in, user, svc):
    response = save(logged_in, locale="de")
    assert response.status_code == 400 and "Choisissez une des options" in text(response)


def test_notices_follow_the_preferred_contact(logged_in, user, svc, outbox):
    start(logged_in, "telephone", {"phone": "06 12 34 56 78"})
    enter_code(logged_in, "telephone", outbox.code(PHONE_FR_E164))
    assert save(logged_in, preferred_contact="sms",
                notifications_email="y").status_code == 302
    assert load_user(svc, user.id).preferred_contact == "sms"
    before = len(outbox.all())
    assert change_password(logged_in).status_code == 302
    notice = outbox.all()[before:]
    assert [m["kind"] for m in notice] == ["sms"] and notice[0]["to"] == PHONE_FR_E164

"""Notifications: pushed by an app, shown in "Mon compte" with an unread count in the
header, sent by e-mail or SMS per the user's choice for their category, limited per app."""

from __future__ import annotations

import pytest

from idp.persistence.models import User
from tests.support import csrf_token


def push(api, demarche, sub, **fields):
    body = {"sub": sub, "title": "Votre demande avance", "category": "requests",
            "body": "Elle est en cours d'instruction.",
            "link": "https://demarche.example.org/demandes/1", **fields}
    return api("POST", "/api/notifications", demarche.token, json=body)


def test_a_notification_shows_in_the_account_and_the_header(api, citizen, demarche, browser):
    response = push(api, demarche, citizen[1])
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["sent_by"] == ["email"]
    home = browser.get("/compte/").get_data(as_text=True)
    assert 'class="count-badge">1' in home  # the header's unread count
    page = browser.get("/compte/notifications")
    html = page.get_data(as_text=True)
    assert "Votre demande avance" in html and "Aide au logement" in html and "Non lue" in html

    token = csrf_token(html)
    notification_id = response.get_json()["id"]
    browser.post(f"/compte/notifications/{notification_id}/lue", data={"csrf_token": token})
    html = browser.get("/compte/notifications").get_data(as_text=True)
    assert "Non lue" not in html and "count-badge" not in html


def test_the_email_follows_the_category_preference(api, citizen, demarche, browser, outbox):
    user, sub = citizen
    push(api, demarche, sub)
    mails = [m for m in outbox() if m["to"] == user.email and m["kind"] == "email"]
    assert mails and mails[-1]["subject"] == "Votre demande avance"
    assert "Aide au logement" in mails[-1]["text"] and "/compte/notifications" in mails[-1]["text"]
    count = len(outbox())
    # "information" is not e-mailed unless asked for.
    assert push(api, demarche, sub, category="information").get_json()["sent_by"] == []
    assert len(outbox()) == count

    token = csrf_token(browser.get("/compte/notifications").get_data(as_text=True))
    browser.post("/compte/notifications/preferences",
                 data={"csrf_token": token, "information-email": "oui"})
    assert push(api, demarche, sub, category="information").get_json()["sent_by"] == ["email"]
    assert push(api, demarche, sub).get_json()["sent_by"] == []  # "requests" unticked


def test_sms_only_to_a_verified_phone_that_asked_for_it(app, svc, api, user_factory, browser,
                                                        demarche, sign_in, outbox):
    user = user_factory(phone_number="+33612345678", phone_number_verified=True)
    browser.login(user.email)
    sub = sign_in(browser, user.email, demarche)
    token = csrf_token(browser.get("/compte/notifications").get_data(as_text=True))
    browser.post("/compte/notifications/preferences",
                 data={"csrf_token": token, "requests-sms": "oui"})
    assert push(api, demarche, sub).get_json()["sent_by"] == ["sms"]
    sms = [m for m in outbox() if m["kind"] == "sms"]
    assert sms and sms[-1]["to"] == "+33612345678" and "Votre demande avance" in sms[-1]["text"]
    with app.app_context():
        svc.db.session.get(User, user.id).phone_number_verified = False
        svc.db.session.commit()
    assert push(api, demarche, sub).get_json()["sent_by"] == []


@pytest.mark.parametrize("change,field", [
    ({"category": "spam"}, "category"), ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"), ({"link": "https://ailleurs.example.com/"}, "link")])
def test_bad_notifications_are_refused(api, citizen, demarche, change, field):
    response = push(api, demarche, citizen[1], **change)
    assert response.status_code == 400
    assert response.get_json()["error_description"].startswith(field)


def test_the_scope_is_required(api, citizen, make_demarche, browser, user, sign_in):
    reader = make_demarche(name="Lecteur", scopes=["subscriptions:read"], host="r.example.org")
    sub = sign_in(browser, user.email, reader)
    response = push(api, reader, sub, link="")
    assert response.status_code == 403 and response.get_json()["error"] == "insufficient_scope"


@pytest.mark.settings(hub={"notifications_per_user": "2/hour"})
def test_notifications_are_limited_per_app_and_user(api, citizen, demarche, user_factory,
                                                    new_browser, sign_in):
    assert push(api, demarche, citizen[1]).status_code == 201
    assert push(api, demarche, citizen[1]).status_code == 201
    limited = push(api, demarche, citizen[1])
    assert limited.status_code == 429 and limited.get_json()["error"] == "rate_limited"
    other = user_factory()
    other_browser = new_browser()
    other_browser.login(other.email)
    assert push(api, demarche, sign_in(other_browser, other.email, demarche)).status_code == 201


@pytest.mark.settings(hub={"notifications_per_client": "1/hour"})
def test_notifications_are_limited_per_app(api, citizen, demarche):
    assert push(api, demarche, citizen[1]).status_code == 201
    assert push(api, demarche, citizen[1]).status_code == 429


@pytest.mark.settings(messaging={"email_per_destination": "1/hour"})
def test_notifications_leave_the_users_code_budget_alone(api, citizen, demarche, outbox):
    user, sub = citizen
    for _ in range(3):
        assert push(api, demarche, sub).get_json()["sent_by"] == ["email"]
    assert len([m for m in outbox() if m["to"] == user.email]) >= 3

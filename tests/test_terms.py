"""A new version of the terms makes signed-in users accept it before going on."""

from __future__ import annotations

from sqlalchemy import select

from idp.persistence.models import AuditEvent, User
from tests.support import query_of


def test_outdated_terms_interrupt_then_resume_the_authorization(browser, rp, user_factory, svc, app):
    person = user_factory(email="old-terms@example.org", terms_version="2020-01")
    response, _, query = browser.authorize(rp)
    login_page = browser.get(response.headers["Location"])
    after_login = browser.submit(login_page, "email", {"email": person.email,
                                                      "password": "correct horse battery staple"})
    resumed = browser.get(after_login.headers["Location"])
    assert resumed.status_code == 302 and "/conditions-generales/accepter" in resumed.headers["Location"]
    page = browser.get(resumed.headers["Location"])
    assert page.status_code == 200
    refused = browser.submit(page, "return_to")  # box not ticked
    assert refused.status_code == 400 and "Vous devez accepter".encode() in refused.data
    accepted = browser.submit(page, "return_to", {"accept": "y"})
    location = browser.follow_to_client(accepted)
    assert "code" in query_of(location) and query_of(location)["state"] == query["state"]
    with app.app_context():
        stored = svc.db.session.scalar(select(User).where(User.email == person.email))
        assert stored.terms_version == svc.settings.registration.terms_version
        assert stored.terms_accepted_at is not None
        assert svc.db.session.scalar(select(AuditEvent).where(AuditEvent.type == "terms.accepted"))


def test_silent_authorization_is_not_interrupted(browser, rp, user_factory):
    person = user_factory(email="silent@example.org")
    browser.login(person.email)
    from tests.conftest import ISSUER  # noqa: F401
    with browser.client.application.app_context():
        svc = browser.client.application.extensions["idp"]
        stored = svc.db.session.scalar(select(User).where(User.email == person.email))
        stored.terms_version = "2020-01"
        svc.db.session.commit()
    response, _, _ = browser.authorize(rp, prompt="none")
    assert "code" in query_of(response.headers["Location"])

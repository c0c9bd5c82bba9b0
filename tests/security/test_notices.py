"""Security notices: one rule for all of them (idp.web.notices), sent by the request that
made the change or queued, never from a response-close hook."""

from __future__ import annotations

import re
from pathlib import Path

from idp.messaging.email import EmailMessage
from idp.messaging.outbox import read_outbox
from idp.persistence.models import User
from idp.web.notices import security_notice

ROOT = Path(__file__).resolve().parents[2]


def messages(svc, to=None, kind=None):
    found = read_outbox(svc.settings.resolve_path(svc.settings.messaging.outbox_dir))
    return [m for m in found if (to is None or m["to"] == to) and (kind is None or m["kind"] == kind)]


def test_no_message_is_ever_sent_from_a_close_hook():
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "idp").rglob("*.py")
                 if re.search(r"\bcall_on_close\b", path.read_text(encoding="utf-8"))]
    assert offenders == []


def _notice(app, svc, user_id, name, **context):
    with app.test_request_context():
        user = svc.db.session.get(User, user_id)
        sent = security_notice(user, name, **context)
        svc.db.session.remove()
    return sent


def test_by_email_to_the_contact_address_then_the_login_address(app, svc, user_factory):
    plain = user_factory(email="plain@example.org")
    contact = user_factory(email="login@example.org", contact_email="contact@example.org")
    assert _notice(app, svc, plain.id, "password_changed", when="01/01/2027 à 10:00")
    assert _notice(app, svc, contact.id, "password_changed", when="01/01/2027 à 10:00")
    assert len(messages(svc, to="plain@example.org")) == 1
    assert len(messages(svc, to="contact@example.org")) == 1
    assert messages(svc, to="login@example.org") == []


def test_by_sms_when_preferred_and_verified_else_by_email(app, svc, user_factory):
    sms = user_factory(email="sms@example.org", phone_number="+33612345678",
                       phone_number_verified=True, preferred_contact="sms")
    unverified = user_factory(email="unverified@example.org", phone_number="+33612345679",
                              phone_number_verified=False, preferred_contact="sms")
    assert _notice(app, svc, sms.id, "password_changed", when="01/01/2027 à 10:00")
    assert _notice(app, svc, unverified.id, "password_changed", when="01/01/2027 à 10:00")
    assert [m["to"] for m in messages(svc, kind="sms")] == ["+33612345678"]
    assert [m["to"] for m in messages(svc, kind="email")] == ["unverified@example.org"]
    # A notice without an SMS version goes by e-mail even when SMS is preferred.
    assert _notice(app, svc, sms.id, "mfa_changed", action="enabled", when="01/01/2027 à 10:00")
    assert [m["to"] for m in messages(svc, kind="email")][-1] == "sms@example.org"


def test_every_notice_names_the_help_desk(make_app):
    app = make_app(support={"email": "assistance@example.org", "phone": "27 00 00"})
    svc = app.extensions["idp"]
    from tests.support import make_user
    person = make_user(app, svc, "someone@example.org", "correct horse battery staple")
    for name, context in (("password_changed", {}), ("account_deleted", {}),
                          ("login_email_changed", {"new_email": "n***@example.org"}),
                          ("mfa_changed", {"action": "disabled"}),
                          ("mfa_locked", {"until": "01/01/2027 à 11:00"}),
                          ("mfa_reset", {"stage": "requested", "effective": "08/01/2027"}),
                          ("password_reset_required", {})):
        assert _notice(app, svc, person.id, name, when="01/01/2027 à 10:00", **context)
        message = messages(svc, to="someone@example.org")[-1]
        assert "assistance@example.org" in message["text"], name
        assert "27 00 00" in message["text"], name
        assert "/mot-de-passe-perdu/assistance" in message["text"], name
        assert 'href="mailto:assistance@example.org"' in message["html"], name


def test_the_help_desk_page_opens_without_a_flow(make_app):
    from tests.support import Browser
    app = make_app(support={"email": "assistance@example.org"})
    page = Browser(app.test_client()).get("/mot-de-passe-perdu/assistance")
    assert page.status_code == 200
    assert 'href="mailto:assistance@example.org"' in page.get_data(as_text=True)


def test_a_queued_message_is_sent_without_the_request(svc):
    svc.messenger.send_later(EmailMessage(to="queued@example.org", subject="S", text="T"))
    svc.messenger.drain()
    assert [m["subject"] for m in messages(svc, to="queued@example.org")] == ["S"]

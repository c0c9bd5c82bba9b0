"""Fixtures of the "Mon compte" tests: the application runs with the test captcha
(``captcha_payload=test-pass``); ``@pytest.mark.settings(...)`` adds overrides."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from idp.messaging.outbox import read_outbox
from idp.persistence.models import SsoSession, User
from tests.conftest import fresh, marked_settings

CAPTCHA_OK = {"captcha_payload": "test-pass"}


@pytest.fixture
def app(make_app, request):
    test_captcha = {"registration": {"captcha_backend": "test"}}
    yield from fresh(make_app(**marked_settings(request, test_captcha)))


class Outbox:
    def __init__(self, svc) -> None:
        self.path = svc.settings.resolve_path(svc.settings.messaging.outbox_dir)

    def all(self) -> list[dict]:
        return read_outbox(self.path)

    def last(self, to: str | None = None) -> dict:
        messages = [m for m in self.all() if to is None or m["to"] == to]
        assert messages, f"no message to {to}"
        return messages[-1]

    def code(self, to: str) -> str:
        message = self.last(to)
        match = re.search(r"\b(\d{4,10})\b", message["text"])
        assert match, message["text"]
        return match.group(1)

    def link(self, to: str) -> str:
        match = re.search(r"https?://\S+", self.last(to)["text"])
        assert match
        return match.group(0)


@pytest.fixture
def outbox(svc):
    return Outbox(svc)


@pytest.fixture
def logged_in(browser, user):
    response = browser.login(user.email)
    assert response.status_code == 302, response.data[:300]
    return browser


@pytest.fixture
def db(app, svc):
    with app.app_context():
        yield svc.db.session
        svc.db.session.rollback()


def load_user(svc, user_id: str) -> User | None:
    session = svc.db.session_factory()
    try:
        return session.get(User, user_id)
    finally:
        session.close()


def age_sessions(svc, user_id: str, minutes: int = 11) -> None:
    """Make every SSO session of the user look authenticated ``minutes`` ago."""
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes)
    with svc.db.transaction() as session:
        session.execute(update(SsoSession).where(SsoSession.user_id == user_id)
                        .values(auth_time=past, reauthenticated_at=past))


def sessions_of(svc, user_id: str) -> list[SsoSession]:
    with svc.db.transaction() as session:
        rows = list(session.scalars(select(SsoSession).where(SsoSession.user_id == user_id)))
        session.expunge_all()
        return rows


def text(response) -> str:
    """The page as a reader sees it (entities decoded)."""
    import html

    return html.unescape(response.data.decode())

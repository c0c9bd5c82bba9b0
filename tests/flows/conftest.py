"""Fixtures of the self-service flow tests: the test captcha, the outbox, form posting."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from idp.messaging.outbox import read_outbox
from idp.persistence.models import AuditEvent
from tests.conftest import _wipe, _wipe_redis
from tests.support import form_with, forms

# Long, not common, and free of the test users' names and addresses.
STRONG_PASSWORD = "la mer est calme ce matin sur le lagon"
LINK_RE = re.compile(r"https?://[^\s\"<>]+")


@pytest.fixture
def app(make_app):
    """The suite's app, with the captcha that accepts ``captcha_payload=test-pass``."""
    application = make_app(registration={"captcha_backend": "test"})
    _wipe(application.extensions["idp"].db)
    _wipe_redis()
    yield application
    application.extensions["idp"].db.remove()


@pytest.fixture
def outbox(svc):
    def read(to: str | None = None, kind: str | None = None) -> list[dict]:
        messages = read_outbox(svc.settings.resolve_path(svc.settings.messaging.outbox_dir))
        return [m for m in messages
                if (to is None or m["to"] == to) and (kind is None or m["kind"] == kind)]
    return read


@pytest.fixture
def audit_types(app, svc):
    def read() -> list[str]:
        with app.app_context():
            types = list(svc.db.session.scalars(
                select(AuditEvent.type).order_by(AuditEvent.created_at)))
            svc.db.session.remove()
            return types
    return read


def post_form(browser, page, field: str, values: dict):
    """Post the form holding ``field`` (or, for a path, the form posting there), its own
    fields overridden by ``values``; a value of None leaves the field out (an unchecked
    box, a missing captcha)."""
    if field.startswith("/"):
        form = next(f for f in forms(page.data) if f["action"].startswith(field))
    else:
        form = form_with(page.data, field)
    data = {**form["fields"], **values}
    return browser.post(form["action"], data={k: v for k, v in data.items() if v is not None})


def text(page) -> str:
    return html.unescape(page.data.decode())


def link_in(message: dict) -> str:
    links = LINK_RE.findall(message["text"])
    assert links, message["text"]
    return links[0]


def fragment_values(link: str) -> dict[str, str]:
    """What idp/static/js/fragment-code.js fills the page's fields with: the values of
    the link's fragment (never sent to the server)."""
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(link).fragment))


def href(page, text: str) -> str:
    match = re.search(r'<a[^>]*href="([^"]+)"[^>]*>\s*' + re.escape(text), page.data.decode())
    assert match, f"no link {text!r} in {page.data[:300]!r}"
    return match.group(1).replace("&amp;", "&")

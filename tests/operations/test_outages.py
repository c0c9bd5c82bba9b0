"""The database or Redis unreachable: a French 503 page for browsers, the spec's
``temporarily_unavailable`` for protocol endpoints, no traceback, nothing half written,
and service back by itself when they return (through a proxy the test cuts)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from idp.persistence.models import User
from tests.conftest import TEST_DB, TEST_REDIS, RegisteredClient, basic_auth
from tests.operations.proxy import CuttableProxy
from tests.support import Browser

pytestmark = pytest.mark.slow


def through(proxy: CuttableProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2
                                     else host))


def upstream_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


@pytest.fixture
def cut_app(make_app, app):
    """An application whose database or Redis goes through a proxy: (make, proxies)."""
    proxies = []

    def make(**settings):
        application = make_app(**settings)
        application.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production
        return application

    def proxy_for(url: str) -> CuttableProxy:
        proxy = CuttableProxy(*upstream_of(url))
        proxies.append(proxy)
        return proxy

    yield make, proxy_for
    for proxy in proxies:
        proxy.close()


def signed_in(application, user) -> Browser:
    browser = Browser(application.test_client())
    assert browser.login(user.email).status_code == 302
    assert browser.get("/compte/").status_code == 200
    return browser


def assert_unavailable(browser: Browser) -> None:
    page = browser.get("/compte/")
    assert page.status_code == 503 and page.headers["Retry-After"]
    html = page.get_data(as_text=True)
    assert "Service momentanément indisponible" in html and "Traceback" not in html
    assert browser.get("/healthz").status_code == 200
    assert browser.get("/readyz").status_code == 503


@pytest.mark.skipif(not TEST_REDIS, reason="the suite runs without Redis")
def test_redis_going_away_and_coming_back(cut_app, user):
    make, proxy_for = cut_app
    proxy = proxy_for(TEST_REDIS)
    application = make(redis_url=through(proxy, TEST_REDIS))
    browser = signed_in(application, user)
    proxy.cut()
    assert_unavailable(browser)
    # What needs no session (a client's token) still works without Redis.
    assert browser.post("/token", data={"grant_type": "client_credentials"}).status_code == 401
    proxy.restore()
    # Back by itself, and the browser is still signed in: its session was not lost.
    assert browser.get("/compte/").status_code == 200
    assert browser.get("/readyz").status_code == 200


@pytest.mark.skipif(not TEST_DB, reason="the suite runs on SQLite")
def test_the_database_going_away_and_coming_back_loses_nothing(cut_app, user, svc, app):
    make, proxy_for = cut_app
    proxy = proxy_for(TEST_DB)
    application = make(database_url=through(proxy, svc.db.url))
    browser = signed_in(application, user)
    profile = browser.get("/compte/profil")
    proxy.cut()
    assert_unavailable(browser)
    token = browser.post("/token", data={"grant_type": "client_credentials"},
                         headers=basic_auth(RegisteredClient("some-client", "secret", "")))
    assert token.status_code == 503 and token.json["error"] == "temporarily_unavailable"
    refused = browser.submit(profile, "given_name", {"given_name": "Pendant la panne"})
    assert refused.status_code == 503
    proxy.restore()
    assert browser.get("/compte/").status_code == 200
    with app.app_context():
        assert svc.db.session.get(User, user.id).given_name == "Marie"  # nothing half saved

"""Bad input never yields a 500: every page a visitor and an administrator can reach by
following links, with hostile values in its query and in every field of its forms.

Found this way, and fixed: a NUL anywhere reached PostgreSQL, which refuses it (500 on
the production setup only); a response type or redirect URI with a quote, a backslash,
a control or a non-ASCII character made Authlib raise ValueError while it wrote its error
description (500 on both backends)."""

from __future__ import annotations

import itertools
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from tests.conftest import _wipe, _wipe_redis
from tests.support import Browser, enrol_totp, forms, pkce_pair, sign_in_with_totp

HOSTILE = ["\x00", "a\x01b", 'a"b\\c', "a" * 5000, "\U0001f600"]
QUERY_NAMES = ["flow", "return_to", "client_id", "page", "type", "response_type",
               "redirect_uri", "scope"]
FIELD = re.compile(r'<(?:select|textarea)[^>]*name="([^"]+)"')
LINK = re.compile(r'href="(/[^"#]*)"')
_ips = itertools.count(1)


@pytest.fixture
def app(make_app):
    # Thousands of requests from one address would meet the rate limits and the
    # captcha, which would then answer instead of the code under test.
    application = make_app(rate_limits={"enabled": False})
    _wipe(application.extensions["idp"].db)
    _wipe_redis()
    yield application
    application.extensions["idp"].db.remove()


def new_browser(app) -> Browser:
    client = app.test_client()
    n = next(_ips)
    client.environ_base["REMOTE_ADDR"] = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return Browser(client)


def signed_in_admin(app, user_factory) -> Browser:
    # A new account each time: a hostile password on the re-authentication page counts
    # as a failure against the account, and enough of them ask for the captcha.
    browser = new_browser(app)
    admin = user_factory(is_admin=True, phone_number="+33612345678")
    svc = app.extensions["idp"]
    totp = enrol_totp(app, svc, admin)
    assert sign_in_with_totp(browser, app, svc, admin, totp).status_code == 302
    return browser


def all_forms(html: bytes) -> list[dict]:
    found = forms(html)
    for form in found:  # tests.support.forms reads inputs only
        for name in FIELD.findall(html.decode()):
            form["fields"].setdefault(name, "")
    return [form for form in found if form["method"].lower() == "post"]


def crawl(browser: Browser, start: list[str]) -> list[str]:
    seen, queue = set(start), list(start)
    while queue:
        response = browser.get(queue.pop(0))
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        for href in LINK.findall(response.data.decode()):
            href = href.replace("&amp;", "&")
            path = urlsplit(href).path
            if path.startswith("/static") or "logout" in path or href in seen:
                continue
            if "lang=" in href:  # the same page in the other language
                continue
            seen.add(href)
            queue.append(href)
    return sorted(seen)


def start_urls(app, rp) -> list[str]:
    _, challenge = pkce_pair()
    urls = ["/authorize?" + urlencode({
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
        "scope": "openid profile", "state": "s", "code_challenge": challenge,
        "code_challenge_method": "S256"})]
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.endpoint.endswith("static"):
            urls.append(re.sub(r"<(?:[^:>]+:)?(\w+)>",
                               lambda m: rp.client_id if m.group(1) == "client_id" else "x",
                               rule.rule))
    return urls


def hostile_requests(app, url: str, browser_for) -> list[str]:
    """The 5xx answers to ``url`` with hostile query values and form fields."""
    failures = []
    browser = browser_for()
    parts = urlsplit(url)
    for name, value in itertools.product(QUERY_NAMES, HOSTILE):
        query = {**dict(parse_qsl(parts.query)), name: value}  # replaced, not repeated
        response = browser.get(f"{parts.path}?{urlencode(query)}")
        if response.status_code >= 500:
            failures.append(f"GET {url} {name}={value[:12]!r}: {response.status_code}")
    page = browser.get(url)
    if page.status_code != 200 or b"<form" not in page.data:
        return failures
    for index, form in enumerate(all_forms(page.data)):
        names = [n for n in form["fields"] if n != "csrf_token"]
        for name, value in itertools.product(names, HOSTILE):
            fresh = browser.get(url)
            if fresh.status_code != 200:  # signed out by the previous post
                browser = browser_for()
                fresh = browser.get(url)
            candidates = all_forms(fresh.data) if fresh.status_code == 200 else []
            if index >= len(candidates):
                continue
            data = {**candidates[index]["fields"], name: value}
            data.update(dict(candidates[index]["buttons"][:1]))
            response = browser.post(candidates[index]["action"] or url, data=data)
            if response.status_code >= 500:
                failures.append(f"POST {url} form {index} {name}={value[:12]!r}: "
                                f"{response.status_code}")
    return failures


def test_no_page_or_form_answers_hostile_values_with_a_server_error(app, client_factory,
                                                                   user_factory):
    rp = client_factory(require_consent=True)
    failures = []
    visitor = new_browser(app)
    for url in crawl(visitor, start_urls(app, rp)):
        failures += hostile_requests(app, url, lambda: new_browser(app))
    admin_urls = crawl(signed_in_admin(app, user_factory), start_urls(app, rp))
    assert "/compte/relations/personne/ajouter" in admin_urls  # the crawl went deep
    for url in admin_urls:
        failures += hostile_requests(app, url, lambda: signed_in_admin(app, user_factory))
    assert not failures, "\n".join(failures)

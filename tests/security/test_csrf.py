"""Cross-site request forgery (issue 4): a CSRF token in every form, and browser posts
from another site refused on Origin / Sec-Fetch-Site, except on the protocol endpoints
that relying parties call cross-site."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.conftest import basic_auth
from tests.security.test_headers import crawl, signed_in_pages
from tests.support import PASSWORD, csrf_token, enrol_totp, form_with, sign_in_with_totp

HTTPS = "https://idp.example.org"
CROSS_SITE = [{"Sec-Fetch-Site": "cross-site"},
              {"Sec-Fetch-Site": "same-site"},
              {"Origin": "https://evil.example"},
              {"Origin": "http://localhost.evil.example"},
              {"Origin": "https://localhost"},  # another scheme is another origin
              {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}]
SAME_ORIGIN = [{},
               {"Origin": "http://localhost"},
               {"Origin": "http://127.0.0.1:5000"},  # the issuer
               {"Sec-Fetch-Site": "same-origin"},
               # Referrer-Policy: no-referrer makes browsers send Origin: null on our own
               # form posts; Sec-Fetch-Site still tells where they come from.
               {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
               {"Sec-Fetch-Site": "none"}]


@pytest.fixture
def citizen(user_factory, svc):
    return user_factory(terms_version=svc.settings.registration.terms_version)


@pytest.fixture
def admin(user_factory, svc):
    return user_factory(is_admin=True, terms_version=svc.settings.registration.terms_version)


class PostForms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._current = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {"method": (attrs.get("method") or "get").lower(),
                             "action": attrs.get("action"), "fields": set()}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None:
            self._current["fields"].add(attrs.get("name"))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def test_every_post_form_carries_a_csrf_token(app, browser, admin, client_factory):
    pages = crawl(app, browser) + signed_in_pages(app, browser, admin, client_factory)
    posts = 0
    for url, response in pages:
        if not response.content_type.startswith("text/html"):
            continue
        parser = PostForms()
        parser.feed(response.get_data(as_text=True))
        for form in parser.forms:
            if form["method"] == "post":
                posts += 1
                assert "csrf_token" in form["fields"], f"{url}: form to {form['action']}"
    assert posts >= 15


def test_a_post_without_a_valid_token_is_refused(app, browser, citizen):
    browser.get("/login")
    missing = browser.post("/login", data={"email": citizen.email, "password": PASSWORD})
    assert missing.status_code == 400
    forged = browser.post("/login", data={"email": citizen.email, "password": PASSWORD,
                                          "csrf_token": "forged"})
    assert forged.status_code == 400
    # A token from another browser session does not fit this one.
    other = app.test_client()
    token = csrf_token(other.get("/login").data)
    assert browser.post("/login", data={"email": citizen.email, "password": PASSWORD,
                                        "csrf_token": token}).status_code == 400
    assert browser.get("/compte/").status_code == 302


def login_with_headers(browser, citizen, headers):
    """The login form, with its valid CSRF token, posted with these headers."""
    page = browser.get("/login")
    form = form_with(page.data, "email")
    return browser.post(form["action"], headers=headers, data={
        **form["fields"], "email": citizen.email, "password": PASSWORD})


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_post_is_refused_even_with_a_valid_token(browser, citizen, headers):
    response = login_with_headers(browser, citizen, headers)
    assert response.status_code == 403
    assert "autre site" in response.get_data(as_text=True)
    assert browser.get("/compte/").status_code == 302


@pytest.mark.parametrize("headers", SAME_ORIGIN)
def test_a_same_origin_post_goes_through(browser, citizen, headers):
    assert login_with_headers(browser, citizen, headers).status_code == 302
    assert browser.get("/compte/").status_code == 200


def test_signed_in_actions_are_protected_too(app, svc, browser, admin, client_factory):
    rp = client_factory()
    sign_in_with_totp(browser, app, svc, admin, enrol_totp(app, svc, admin))
    page = browser.get(f"/admin/clients/{rp.client_id}/suppression")
    token = csrf_token(page.data)
    url = f"/admin/clients/{rp.client_id}/suppression"
    assert browser.post(url, data={"csrf_token": token},
                        headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert browser.post(url, data={"csrf_token": token},
                        headers={"Origin": "https://evil.example"}).status_code == 403
    assert browser.get(f"/admin/clients/{rp.client_id}").status_code == 200
    assert browser.post(url, data={"csrf_token": token},
                        headers={"Origin": "http://localhost",
                                 "Sec-Fetch-Site": "same-origin"}).status_code == 302
    assert browser.get(f"/admin/clients/{rp.client_id}").status_code == 404


def test_cross_site_navigation_is_not_blocked(browser):
    # Arriving from a démarche site by a link (GET) is the normal way in.
    response = browser.get("/login", headers={"Sec-Fetch-Site": "cross-site",
                                              "Origin": "https://demarche.example.org"})
    assert response.status_code == 200


def test_protocol_endpoints_accept_cross_site_posts(browser, rp):
    cross = {"Origin": "https://demarche.example.org", "Sec-Fetch-Site": "cross-site"}
    token = browser.post("/token", headers={**cross, **basic_auth(rp)},
                         data={"grant_type": "authorization_code", "code": "nope",
                               "redirect_uri": rp.redirect_uri, "code_verifier": "x" * 43})
    assert token.status_code == 400 and token.json["error"] == "invalid_grant"
    revoke = browser.post("/revoke", headers={**cross, **basic_auth(rp)},
                          data={"token": "unknown"})
    assert revoke.status_code == 200
    introspect = browser.post("/introspect", headers={**cross, **basic_auth(rp)},
                              data={"token": "unknown"})
    assert introspect.status_code != 403
    userinfo = browser.post("/userinfo", headers=cross, data={"access_token": "unknown"})
    assert userinfo.status_code == 401
    authorize = browser.post("/authorize", headers=cross, data={
        "client_id": rp.client_id, "response_type": "code", "scope": "openid",
        "redirect_uri": rp.redirect_uri, "state": "s"})
    assert authorize.status_code in (200, 302, 303, 400)
    logout = browser.post("/logout", headers=cross, data={"client_id": rp.client_id})
    assert logout.status_code == 200


def test_origin_check_under_https(make_app, app, citizen):
    client = make_app(issuer=HTTPS).test_client()

    def post(headers):
        page = client.get("/login", base_url=HTTPS)
        form = form_with(page.data, "email")
        return client.post(form["action"], base_url=HTTPS, headers=headers, data={
            **form["fields"], "email": citizen.email, "password": "pas le bon"})

    # A wrong password re-renders the form (400); a refused origin is 403.
    assert post({"Origin": HTTPS}).status_code == 400
    assert post({"Origin": "https://idp.example.org:443"}).status_code == 400
    assert post({"Origin": "http://idp.example.org"}).status_code == 403
    assert post({"Origin": "https://autre.example.org"}).status_code == 403
    # No Referer (our Referrer-Policy) does not make the CSRF check fail over https.
    assert post({"Origin": "null", "Sec-Fetch-Site": "same-origin"}).status_code == 400

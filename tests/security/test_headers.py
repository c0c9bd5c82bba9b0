"""Security headers on every response (issue 4), and pages that the CSP does not break:
every page, crawled as an anonymous visitor and as a signed-in administrator, has no
inline script, no inline style and no event-handler attribute."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from idp.config import PROJECT_ROOT
from tests.support import csrf_token, enrol_totp, sign_in_with_totp

HTTPS = "https://idp.example.org"
ONE_YEAR = 365 * 24 * 3600
# Not pages: JSON, downloads, static files, and GET routes with an effect of their own.
NOT_PAGES = {"static", "oidc.discovery", "oidc.oauth_metadata", "oidc.jwks", "account.export"}


@pytest.fixture
def admin(user_factory, svc):
    return user_factory(is_admin=True, terms_version=svc.settings.registration.terms_version)


def page_urls(app) -> list[str]:
    """Every GET route without a URL parameter."""
    return sorted({rule.rule for rule in app.url_map.iter_rules()
                   if "GET" in rule.methods and not rule.arguments
                   and rule.endpoint not in NOT_PAGES and not rule.endpoint.endswith(".static")})


def crawl(app, browser, extra=()) -> list[tuple[str, object]]:
    """(url, response) for every page, plus ``extra`` URLs and an unknown URL."""
    results = []
    for url in [*page_urls(app), *extra, "/page-inexistante"]:
        response = browser.get(url)
        results.append((url, response))
    return results


def signed_in_pages(app, browser, admin, client_factory):
    """Every page as an administrator with a fresh password, and the pages with ids."""
    rp = client_factory(require_consent=True)
    svc = app.extensions["idp"]
    totp = enrol_totp(app, svc, admin)
    assert sign_in_with_totp(browser, app, svc, admin, totp).status_code == 302
    extra = [f"/admin/clients/{rp.client_id}", f"/admin/clients/{rp.client_id}/suppression",
             f"/admin/usagers/{admin.id}", "/admin/journal?type=login"]
    pages = crawl(app, browser, extra)
    consent, _, _ = browser.authorize(rp)
    while consent.status_code in (302, 303) and "/authorize" in consent.headers["Location"]:
        consent = browser.get(consent.headers["Location"])
    pages.append(("consent", consent))
    return pages


class InlineFinder(HTMLParser):
    """Collects what a strict CSP would block: inline scripts and styles, event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        for name, value in attrs.items():
            if name == "style":
                self.problems.append(f"style= on <{tag}>")
            elif name.startswith("on"):
                self.problems.append(f"{name}= on <{tag}>")
            elif name in ("href", "src", "action") and (value or "").strip().lower() \
                    .startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")


def inline_problems(html: str) -> list[str]:
    finder = InlineFinder()
    finder.feed(html)
    return finder.problems


def assert_no_inline_code(pages) -> None:
    checked = 0
    for url, response in pages:
        if not response.content_type.startswith("text/html"):
            continue
        checked += 1
        problems = inline_problems(response.get_data(as_text=True))
        assert not problems, f"{url}: {problems}"
    assert checked >= 10


def assert_csp(response) -> None:
    csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["default-src"] == ["'self'"]


def test_every_response_has_the_csp_and_nosniff(app, browser, admin, client_factory, rp):
    pages = crawl(app, browser)
    pages += [("/token", browser.post("/token", data={"grant_type": "authorization_code"})),
              ("/userinfo", browser.get("/userinfo")),
              ("/.well-known/openid-configuration",
               browser.get("/.well-known/openid-configuration")),
              ("/jwks.json", browser.get("/jwks.json")),
              ("/static/css/app.css", browser.get("/static/css/app.css"))]
    pages += signed_in_pages(app, browser, admin, client_factory)
    for url, response in pages:
        assert_csp(response)
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert response.headers["X-Frame-Options"] == "DENY", url
        # Plain http: no HSTS (it would be ignored, and breaks local development).
        assert "Strict-Transport-Security" not in response.headers, url


def test_hsts_of_at_least_a_year_under_https(make_app, app):
    https_app = make_app(issuer=HTTPS)
    client = https_app.test_client()
    for url in ("/", "/login", "/jwks.json", "/page-inexistante"):
        response = client.get(url, base_url=HTTPS)
        hsts = response.headers["Strict-Transport-Security"]
        max_age = int(re.search(r"max-age=(\d+)", hsts).group(1))
        assert max_age >= ONE_YEAR and "includeSubDomains" in hsts
        assert_csp(response)


def test_authentication_pages_send_no_referrer(app, browser, user_factory, svc):
    user = user_factory(terms_version=svc.settings.registration.terms_version)
    urls = ["/login", "/inscription", "/mot-de-passe-perdu", "/authorize?client_id=x",
            "/logout", "/"]
    for url in urls:
        assert browser.get(url).headers["Referrer-Policy"] == "no-referrer", url
    browser.login(user.email)
    for url in ("/login/reauth", "/compte/"):
        assert browser.get(url).headers["Referrer-Policy"] == "no-referrer", url


def test_pages_with_personal_data_and_protocol_responses_are_not_stored(
        app, browser, admin, client_factory):
    for url, response in signed_in_pages(app, browser, admin, client_factory):
        if response.content_type.startswith("text/html"):
            assert response.headers["Cache-Control"] == "no-store", url
    token = browser.post("/token", data={"grant_type": "client_credentials"})
    assert token.headers["Cache-Control"] == "no-store"
    # Public metadata and static files may be cached.
    assert "no-store" not in browser.get("/jwks.json").headers.get("Cache-Control", "")
    assert "no-store" not in browser.get("/static/css/app.css").headers.get("Cache-Control", "")


def test_no_page_has_inline_script_or_style_anonymous(app, browser):
    assert_no_inline_code(crawl(app, browser))


def test_no_page_has_inline_script_or_style_signed_in(app, browser, admin, client_factory):
    assert_no_inline_code(signed_in_pages(app, browser, admin, client_factory))


def test_no_template_has_inline_script_or_style():
    """Pages a crawl cannot reach (errors, later steps of flows) are covered by the
    templates themselves. E-mail templates are not served under the CSP."""
    root = Path(PROJECT_ROOT) / "templates"
    templates = [p for p in root.rglob("*.html") if "messages" not in p.relative_to(root).parts]
    assert len(templates) > 20
    for path in templates:
        source = path.read_text()
        # Jinja expressions and statements out of the way, the rest is HTML.
        html = re.sub(r"{%.*?%}|{{.*?}}|{#.*?#}", "x", source, flags=re.S)
        assert not inline_problems(html), f"{path.relative_to(root)}: {inline_problems(html)}"


def test_error_pages_carry_the_headers(app, browser):
    page = browser.get("/login")
    # A CSRF failure and a 404 render the error template under the same policy.
    failure = browser.post("/login", data={"email": "a@example.org", "password": "x"})
    assert failure.status_code == 400
    for response in (failure, browser.get("/nulle-part")):
        assert_csp(response)
        assert response.headers["Cache-Control"] == "no-store"
        assert not inline_problems(response.get_data(as_text=True))
    assert csrf_token(page.data)

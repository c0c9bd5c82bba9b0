"""Helpers for driving the provider like a browser and a relying party would."""

from __future__ import annotations

import base64
import hashlib
import re
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

PASSWORD = "correct horse battery staple"


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {"action": attrs.get("action", ""), "method": attrs.get("method", "get"),
                             "fields": {}, "buttons": []}
            self.forms.append(self._current)
        elif self._current is not None and tag == "input" and attrs.get("name"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            self._current["fields"][attrs["name"]] = attrs.get("value", "")
        elif self._current is not None and tag == "button" and attrs.get("name"):
            self._current["buttons"].append((attrs["name"], attrs.get("value", "")))
        elif self._current is not None and tag == "textarea" and attrs.get("name"):
            self._textarea = attrs["name"]
            self._current["fields"][self._textarea] = ""

    def handle_data(self, data):
        if self._current is not None and self._textarea is not None:
            self._current["fields"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None
        elif tag == "textarea" and self._textarea is not None:
            # As browsers do: the newline right after <textarea> is not part of the value.
            value = self._current["fields"][self._textarea] if self._current else ""
            if self._current is not None:
                self._current["fields"][self._textarea] = value.removeprefix("\n")
            self._textarea = None


def forms(html: str | bytes) -> list[dict]:
    parser = _FormParser()
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    return parser.forms


def form_with(html, field: str) -> dict:
    for form in forms(html):
        if field in form["fields"] or any(field == b[0] for b in form["buttons"]):
            return form
    raise AssertionError(f"no form with field {field!r}")


def csrf_token(html) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html.decode() if isinstance(html, bytes) else html)
    assert match, "no CSRF token in page"
    return match.group(1)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def path_of(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class RegisteredClient:
    client_id: str
    client_secret: str | None
    redirect_uri: str


class Browser:
    """A Flask test client used like a browser: follows the provider's pages."""

    def __init__(self, client) -> None:
        self.client = client

    def get(self, url, **kw):
        return self.client.get(path_of(url) if url.startswith("http") else url, **kw)

    def post(self, url, **kw):
        response = self.client.post(path_of(url) if url.startswith("http") else url, **kw)
        return self.after_post(response)

    def after_post(self, response):
        """Follow a Post/Redirect/Get to the page it shows (idp.web.prg), as a browser
        does; ``response.prg_location`` keeps the address the POST redirected to."""
        location = response.headers.get("Location", "") if response.status_code == 303 else ""
        if "vue=" not in location:
            return response
        shown = self.client.get(path_of(location) if location.startswith("http") else location)
        shown.prg_location = location
        return shown

    def submit(self, response, field: str, values: dict | None = None, button=None):
        form = form_with(response.data, field)
        data = dict(form["fields"])
        data.update(values or {})
        if button:
            data[button[0]] = button[1]
        return self.post(form["action"], data=data)

    def login(self, email: str, password: str = PASSWORD, start="/login"):
        page = self.get(start)
        assert page.status_code == 200, page.status_code
        return self.submit(page, "email", {"email": email, "password": password})

    def authorize(self, client: RegisteredClient, scope="openid profile email", **params):
        verifier, challenge = pkce_pair()
        query = {"response_type": "code", "client_id": client.client_id,
                 "redirect_uri": client.redirect_uri, "scope": scope,
                 "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
                 "code_challenge": challenge, "code_challenge_method": "S256"}
        query.update(params)  # a None value removes the parameter
        query = {k: v for k, v in query.items() if v is not None}
        response = self.get("/authorize?" + urlencode(query))
        return response, verifier, query

    def follow_to_client(self, response, email=None, password=PASSWORD, consent=True, max_steps=8):
        """Follow redirects and pages until the browser leaves for the client."""
        for _ in range(max_steps):
            if response.status_code in (301, 302, 303):
                location = response.headers["Location"]
                if location.startswith("http") and not location.startswith("http://127.0.0.1:5000") \
                        and not location.startswith("http://localhost/"):
                    return location
                response = self.get(location)
                continue
            html = response.data
            if b'name="email"' in html and b'name="password"' in html:
                assert email, "login page shown but no email given"
                response = self.submit(response, "email", {"email": email, "password": password})
                continue
            if b'value="allow"' in html:
                response = self.submit(response, "decision",
                                       button=("decision", "allow" if consent else "deny"))
                continue
            raise AssertionError(f"stuck on {response.status_code}: {html[:500]!r}")
        raise AssertionError("too many steps")


# -- shared by the fixtures (tests/conftest.py, tests/e2e) and scripts/a11y_screens.py ------
def provider_environment(issuer: str, database_url: str, workdir: Path, secret_key: str,
                         **settings: str) -> dict[str, str]:
    """The environment of a provider process for tests: this machine's, without any
    IDP_ variable, plus its own issuer, database, keys and outbox, and a cheap argon2.
    ``settings`` are more IDP_ variables (``IDP_REDIS_URL=...``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "DEMARCHES_"))}
    env.update({
        "IDP_ISSUER": issuer,
        "IDP_DATABASE_URL": database_url,
        "IDP_SECRET_KEY": secret_key,
        "IDP_KEYS_DIR": str(workdir / "keys"),
        "IDP_INSTANCE_DIR": str(workdir / "instance"),
        "IDP_MESSAGING__OUTBOX_DIR": str(workdir / "outbox"),
        "IDP_PASSWORDS__ARGON2_MEMORY_KIB": "1024",
        "IDP_PASSWORDS__ARGON2_TIME_COST": "1",
        "IDP_TOKENS__REFRESH_TOKEN_REUSE_GRACE": "0",
        "PYTHONUNBUFFERED": "1",
        **settings,
    })
    return env


def make_user(app, svc, email: str | None = None, password: str = PASSWORD, **fields):
    """An account with a verified address that has accepted the terms in force
    (detached from the session). ``fields`` set any other column."""
    from idp.identity.users import create_user

    with app.app_context():
        user = create_user(svc.db.session, svc.passwords,
                           email=email or f"user-{uuid.uuid4().hex[:8]}@example.org",
                           password=password, given_name=fields.pop("given_name", "Marie"),
                           family_name=fields.pop("family_name", "Dupont"),
                           email_verified=fields.pop("email_verified", True),
                           terms_version=fields.pop(
                               "terms_version", svc.settings.registration.terms_version))
        for key, value in fields.items():
            setattr(user, key, value)
        svc.db.session.commit()
        svc.db.session.expunge(user)
        return user


def resume_of(page) -> str:
    """The ``/authorize/resume/<flow>`` a login page's sign-in will go back to (its
    links to recovery and registration carry it)."""
    match = re.search(r'return_to=((?:/|%2F)authorize(?:/|%2F)resume(?:/|%2F)[^"&]+)',
                      page.get_data(as_text=True))
    assert match, "not a login page of an authorization request"
    return unquote(match.group(1))


# -- second factor: administrators sign in with one ------------------------------------
def enrol_totp(app, svc, user):
    """Give ``user`` a confirmed authenticator, as if enrolled; returns its ``pyotp.TOTP``."""
    import pyotp

    from idp.persistence.models import MfaCredential, utcnow
    from idp.security import mfa

    secret = mfa.new_secret()
    with app.app_context():
        svc.db.session.add(MfaCredential(user_id=user.id, kind="totp",
                                         secret=mfa.seal(svc.secret_key, user.id, secret),
                                         confirmed_at=utcnow()))
        svc.db.session.commit()
    return pyotp.TOTP(secret)


def unused_totp_code(app, svc, user_id: str, totp) -> str:
    """A code the provider accepts now: of the current time step or the next (one step
    of drift is accepted), after the last one used: two sign-ins fit in one step."""
    from sqlalchemy import select

    from idp.persistence.models import MfaCredential
    from idp.security import mfa

    with app.app_context():
        last = svc.db.session.scalar(select(MfaCredential.last_used_step).where(
            MfaCredential.user_id == user_id, MfaCredential.confirmed_at.is_not(None)))
    current = int(mfa.clock() // mfa.STEP)
    for step in (current, current + 1):
        if last is None or step > last:
            return totp.at(step * mfa.STEP)
    raise AssertionError("both codes of this time step are used: sign in less often")


def sign_in_with_totp(browser, app, svc, user, totp, start: str = "/login"):
    """Password, then the authenticator's code; the response to the code."""
    response = browser.login(user.email, start=start)
    assert response.status_code == 302, response.status_code
    assert response.headers["Location"].startswith("/login/mfa"), response.headers["Location"]
    page = browser.get(response.headers["Location"])
    return browser.submit(page, "code", {"code": unused_totp_code(app, svc, user.id, totp)})


def make_admin(app, svc, user_factory, **fields):
    """An administrator with an authenticator: ``(user, totp)``."""
    user = user_factory(is_admin=True, **fields)
    return user, enrol_totp(app, svc, user)

"""Browser sessions (issue 4): random server-side ids, cookie attributes, a new id at
login and re-authentication, idle and absolute limits for both the stored session and
the SSO session row, logout that destroys the stored session, lazy writes."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from sqlalchemy import select, update

import idp.security.sessions as sessions_module
from idp.persistence.models import SsoSession
from idp.security.sessions import WRITE_INTERVAL, session_storage_key
from tests.support import PASSWORD, csrf_token, form_with

HTTPS = "https://idp.example.org"
COOKIE = "idp_session"
URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")


@pytest.fixture
def citizen(user_factory, svc):
    return user_factory(terms_version=svc.settings.registration.terms_version)


def sid_of(browser, name=COOKIE, domain="localhost") -> str | None:
    cookie = browser.client.get_cookie(name, domain=domain)
    return cookie.value if cookie else None


def set_sid(browser, value, name=COOKIE, domain="localhost") -> None:
    browser.client.set_cookie(name, value, domain=domain)


def signed_in(browser) -> bool:
    response = browser.get("/compte/")
    assert response.status_code in (200, 302), response.status_code
    return response.status_code == 200


@pytest.fixture
def clock(monkeypatch):
    """Moves the clock of the session layer (the store's own expiry is checked too)."""
    class Clock:
        offset = 0.0

        @classmethod
        def time(cls):
            return time.time() + cls.offset

        @classmethod
        def advance(cls, seconds):
            cls.offset += seconds

    monkeypatch.setattr(sessions_module, "time", Clock)
    return Clock


def test_defaults_are_30_minutes_idle_and_12_hours_absolute(svc):
    assert svc.settings.session.idle_timeout == 30 * 60
    assert svc.settings.session.absolute_lifetime == 12 * 3600
    assert svc.settings.session.reauth_max_age == 10 * 60


def test_cookie_over_https_is_host_prefixed_secure_httponly_lax(make_app, app, citizen):
    https_app = make_app(issuer=HTTPS)
    client = https_app.test_client()
    page = client.get("/login", base_url=HTTPS)
    assert page.status_code == 200
    header = next(h for h in page.headers.getlist("Set-Cookie") if h.startswith("__Host-"))
    name, _, rest = header.partition("=")
    value, *attributes = [part.strip() for part in rest.split(";")]
    assert name == f"__Host-{COOKIE}"
    lowered = [a.lower() for a in attributes]
    assert "secure" in lowered and "httponly" in lowered and "samesite=lax" in lowered
    assert "path=/" in lowered
    # __Host-: no Domain; a browser-session cookie: the server decides when it ends.
    assert not any(a.startswith(("domain", "expires", "max-age")) for a in lowered)
    assert URLSAFE.match(value) and len(value) * 6 >= 128
    # Signing in over https keeps the same attributes on the new id.
    form = form_with(page.data, "email")
    done = client.post("/login" + form["action"].partition("/login")[2], base_url=HTTPS,
                       data={**form["fields"], "email": citizen.email, "password": PASSWORD})
    assert done.status_code == 302
    new = [h for h in done.headers.getlist("Set-Cookie") if h.startswith("__Host-")]
    assert new and "Secure" in new[0] and "HttpOnly" in new[0] and "SameSite=Lax" in new[0]
    assert client.get("/compte/", base_url=HTTPS).status_code == 200


def test_plain_http_cookie_has_no_host_prefix_but_is_httponly_lax(browser):
    page = browser.get("/login")
    header = page.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=") and "HttpOnly" in header and "SameSite=Lax" in header


def test_ids_are_random_256_bits_and_the_data_stays_on_the_server(browser, new_browser, svc):
    browser.get("/login")
    sid = sid_of(browser)
    other = new_browser()
    other.get("/login")
    assert sid != sid_of(other)
    assert URLSAFE.match(sid) and len(sid) >= 43  # 32 random bytes
    # The store knows the session only under the hash of its id.
    assert svc.kv.get(session_storage_key(sid)) is not None
    assert svc.kv.get("sess:" + sid) is None
    assert sid not in svc.kv.get(session_storage_key(sid)).decode()


def test_an_unknown_cookie_value_is_never_adopted(browser, svc):
    planted = "A" * 43
    set_sid(browser, planted)
    browser.get("/login")
    assert sid_of(browser) != planted
    assert svc.kv.get(session_storage_key(planted)) is None


def test_login_issues_a_new_id_and_the_old_one_no_longer_works(browser, new_browser, citizen, svc):
    browser.get("/login")
    before = sid_of(browser)
    assert browser.login(citizen.email).status_code == 302
    after = sid_of(browser)
    assert after and after != before
    assert svc.kv.get(session_storage_key(before)) is None
    assert signed_in(browser)
    # Someone holding the pre-login id (session fixation) is not signed in.
    attacker = new_browser()
    set_sid(attacker, before)
    assert not signed_in(attacker)


def test_reauthentication_issues_a_new_id(browser, citizen, svc):
    browser.login(citizen.email)
    before = sid_of(browser)
    page = browser.get("/login/reauth?return_to=/compte/")
    done = browser.submit(page, "password", {"password": PASSWORD})
    assert done.status_code == 302
    assert sid_of(browser) != before
    assert svc.kv.get(session_storage_key(before)) is None
    assert signed_in(browser)


def test_logout_destroys_the_server_side_session(browser, new_browser, citizen, svc):
    browser.login(citizen.email)
    sid = sid_of(browser)
    page = browser.get("/compte/")
    done = browser.post("/logout", data={"csrf_token": csrf_token(page.data), "confirm": "yes"})
    assert done.status_code == 200
    assert svc.kv.get(session_storage_key(sid)) is None
    assert not signed_in(browser)
    replay = new_browser()
    set_sid(replay, sid)
    assert not signed_in(replay)


def test_idle_timeout_slides_with_use_then_ends_the_stored_session(browser, citizen, svc, clock):
    browser.login(citizen.email)
    sid = sid_of(browser)
    idle = svc.settings.session.idle_timeout
    # Used every 29 minutes, the session lives on past the idle timeout.
    for _ in range(3):
        clock.advance(idle - 60)
        assert signed_in(browser)
    assert sid_of(browser) == sid
    # The store's own expiry follows: at least the idle timeout, at most one write
    # interval more.
    ttl = svc.kv.ttl(session_storage_key(sid))
    assert idle - 5 <= ttl <= idle + WRITE_INTERVAL
    # Unused for the idle timeout (plus the write interval): gone.
    clock.advance(idle + WRITE_INTERVAL + 1)
    assert not signed_in(browser)
    assert svc.kv.get(session_storage_key(sid)) is None


def test_absolute_lifetime_ends_even_a_busy_session(browser, citizen, svc, clock):
    browser.login(citizen.email)
    lifetime = svc.settings.session.absolute_lifetime
    elapsed = 0
    step = 25 * 60
    while elapsed + step < lifetime:
        clock.advance(step)
        elapsed += step
        assert signed_in(browser)
    # The store's expiry never goes past the absolute lifetime.
    assert svc.kv.ttl(session_storage_key(sid_of(browser))) <= lifetime - elapsed + 1
    clock.advance(lifetime - elapsed + 1)
    assert not signed_in(browser)


def _sso_rows(app, svc, user_id):
    with app.app_context():
        rows = list(svc.db.session.scalars(select(SsoSession).where(SsoSession.user_id == user_id)))
        svc.db.session.expunge_all()
        return rows


def _move_rows(app, svc, user_id, **values):
    with app.app_context():
        svc.db.session.execute(update(SsoSession).where(SsoSession.user_id == user_id)
                               .values(**values))
        svc.db.session.commit()


def test_sso_row_lives_12_hours_at_most(app, svc, browser, citizen):
    browser.login(citizen.email)
    (row,) = _sso_rows(app, svc, citizen.id)
    assert row.expires_at - row.created_at == dt.timedelta(hours=12)
    now = dt.datetime.now(dt.timezone.utc)
    # Created 12 hours ago, in use a second ago: ended.
    _move_rows(app, svc, citizen.id, created_at=now - dt.timedelta(hours=12),
               auth_time=now - dt.timedelta(hours=12), expires_at=now - dt.timedelta(seconds=1),
               last_seen_at=now - dt.timedelta(seconds=1))
    assert not signed_in(browser)


def test_sso_row_ends_after_30_minutes_idle(app, svc, browser, citizen):
    browser.login(citizen.email)
    now = dt.datetime.now(dt.timezone.utc)
    _move_rows(app, svc, citizen.id, last_seen_at=now - dt.timedelta(minutes=29))
    assert signed_in(browser)
    _move_rows(app, svc, citizen.id, last_seen_at=now - dt.timedelta(minutes=31))
    assert not signed_in(browser)


def test_sso_row_idle_timeout_slides_with_use_and_expiry_is_recorded(app, svc, browser,
                                                                      citizen):
    browser.login(citizen.email)
    now = dt.datetime.now(dt.timezone.utc)
    _move_rows(app, svc, citizen.id, last_seen_at=now - dt.timedelta(minutes=29))
    assert signed_in(browser)
    (row,) = _sso_rows(app, svc, citizen.id)
    assert row.last_seen_at > now - dt.timedelta(minutes=1)  # use slides it
    # Without that, a user active on read-only pages is signed out 30 minutes after login.
    _move_rows(app, svc, citizen.id, last_seen_at=now - dt.timedelta(minutes=31))
    assert not signed_in(browser)
    (row,) = _sso_rows(app, svc, citizen.id)
    assert row.ended_at is not None and row.ended_reason == "expired"


def test_unchanged_sessions_are_written_at_most_once_a_minute(browser, citizen, svc, clock,
                                                              monkeypatch):
    browser.login(citizen.email)
    browser.get("/compte/")
    writes = []
    original = svc.kv.write

    def counting_write(sets, deletes=()):
        writes.extend(key for key in sets if key.startswith("sess:"))
        return original(sets, deletes)

    monkeypatch.setattr(svc.kv, "write", counting_write)
    for _ in range(5):
        assert signed_in(browser)
    assert writes == []
    clock.advance(WRITE_INTERVAL)
    assert signed_in(browser)
    assert len(writes) == 1
    assert signed_in(browser)
    assert len(writes) == 1


def test_protocol_endpoints_never_read_or_write_the_browser_session(browser, citizen, svc,
                                                                    clock, monkeypatch):
    # Relying parties' servers call these: a browser's cookie sent along changes nothing
    # (no store access, no cookie, the session is not kept alive by them).
    browser.login(citizen.email)
    sid = sid_of(browser)
    clock.advance(WRITE_INTERVAL)  # a browser request now would write the session back
    touched = []
    for name in ("get", "set", "delete", "write"):
        original = getattr(svc.kv, name)

        def spy(key, *args, _original=original, **kwargs):
            keys = [key] if isinstance(key, str) else [*key, *(args[0] if args else ())]
            touched.extend(k for k in keys if k.startswith("sess:"))
            return _original(key, *args, **kwargs)

        monkeypatch.setattr(svc.kv, name, spy)
    for method, path in (("get", "/userinfo"), ("post", "/token"), ("post", "/introspect"),
                         ("post", "/revoke")):
        response = getattr(browser, method)(path)
        assert response.status_code in (400, 401), (path, response.status_code)
        assert "Set-Cookie" not in response.headers and sid_of(browser) == sid
    assert touched == []
    assert signed_in(browser)  # the browser's own session is intact
    assert touched  # and read as usual on a page

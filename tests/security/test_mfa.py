"""Second factor: TOTP enrolment (behind a code sent to the login address), login
challenge, replay, drift window, recovery codes, guessing counted per account, population
policy, acr eidas2 step-up, the "Mon compte" pages, and the way back without the app."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pyotp
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update

from idp.persistence.flows import read_flow
from idp.messaging.outbox import read_outbox
from idp.persistence.models import (AuditEvent, Consumable, MfaCredential, SsoSession, User,
                                   utcnow)
from idp.security import mfa, mfa_lockout
from tests.oidc.test_code_flow import exchange
from tests.support import PASSWORD, csrf_token, query_of

# The middle of a 30-second step, so that ±1 step is unambiguous.
T0 = 1_800_000_000 - (1_800_000_000 % 30) + 15
KEY_RE = re.compile(r'id="cle-totp"[^>]*>([A-Z2-7 ]+)<')
RECOVERY_RE = re.compile(r"<code>([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})</code>")


@pytest.fixture
def clock(monkeypatch):
    """The provider's TOTP clock, frozen at ``clock.now`` (tests move it)."""
    class Clock:
        now = float(T0)

    monkeypatch.setattr(mfa, "clock", lambda: Clock.now)
    return Clock


@pytest.fixture
def make_user(user_factory, svc):
    def factory(**fields):
        fields.setdefault("terms_version", svc.settings.registration.terms_version)
        return user_factory(**fields)
    return factory


@pytest.fixture
def enrolled(app, svc, make_user):
    """A user with a confirmed TOTP secret (returned with it) and no recovery codes."""
    def factory(**fields):
        user = make_user(**fields)
        secret = pyotp.random_base32(32)
        with app.app_context():
            svc.db.session.add(MfaCredential(
                user_id=user.id, kind="totp", secret=mfa.seal(svc.secret_key, user.id, secret),
                confirmed_at=utcnow()))
            svc.db.session.commit()
            svc.db.session.remove()
        return user, pyotp.TOTP(secret)
    return factory


@pytest.fixture
def lock_clock(monkeypatch):
    """The clock of the per-account counter of wrong codes (tests move it)."""
    class Clock:
        now = 1_800_000_000.0

        def __call__(self):
            return self.now

        def advance(self, seconds):
            self.now += seconds

    clock_ = Clock()
    monkeypatch.setattr(mfa_lockout, "clock", clock_)
    return clock_


def code_at(totp: pyotp.TOTP, offset_steps: int = 0) -> str:
    return totp.at(T0 + 30 * offset_steps)


def wrong_code(*right: str) -> str:
    return next(c for c in ("000000", "111111", "222222") if c not in right)


def follow(browser, response, max_steps=10):
    """Follow the provider's own redirects; stop on a page or on leaving for a client."""
    for _ in range(max_steps):
        if response.status_code not in (301, 302, 303):
            return response
        location = response.headers["Location"]
        if location.startswith("http") and not location.startswith(("http://127.0.0.1:5000",
                                                                     "http://localhost/")):
            return response
        response = browser.get(location)
    raise AssertionError("too many redirects")


def text(response) -> str:
    return response.get_data(as_text=True)


def password_step(browser, user):
    """Email and password; returns the second-factor page reached."""
    return follow(browser, browser.login(user.email))


def db_read(app, svc, fn):
    with app.app_context():
        try:
            return fn(svc.db.session)
        finally:
            svc.db.session.remove()


def audit_types(app, svc, user_id):
    return db_read(app, svc, lambda db: list(db.scalars(
        select(AuditEvent.type).where(AuditEvent.user_id == user_id)
        .order_by(AuditEvent.created_at))))


def outbox(svc, to):
    messages = read_outbox(svc.settings.resolve_path(svc.settings.messaging.outbox_dir))
    return [m for m in messages if m["to"] == to]


def current_sso(app, svc, user_id):
    return db_read(app, svc, lambda db: db.scalar(select(SsoSession).where(
        SsoSession.user_id == user_id, SsoSession.ended_at.is_(None))
        .order_by(SsoSession.created_at.desc()).limit(1)))


def mfa_enabled(app, svc, user_id):
    return db_read(app, svc, lambda db: db.get(User, user_id).mfa_enabled)


def make_old(app, svc, user_id, minutes=60):
    """Pretend the password was typed long ago (recent_auth_required must ask again)."""
    old = utcnow() - dt.timedelta(minutes=minutes)

    def run(db):
        db.execute(update(SsoSession).where(SsoSession.user_id == user_id)
                   .values(auth_time=old, reauthenticated_at=old))
        db.commit()
    db_read(app, svc, run)


CODE_RE = re.compile(r"\b(\d{6})\b")


def confirm_address(browser, svc, page, to):
    """The step before a first authenticator: a code sent to the login address, typed."""
    assert "Confirmer votre adresse e-mail" in text(page), text(page)[:3000]
    sent = browser.submit(page, "send", button=("send", "1"))
    assert sent.status_code == 200, text(sent)[:3000]
    code = CODE_RE.search(outbox(svc, to)[-1]["text"]).group(1)
    done = browser.submit(sent, "code", {"code": code})
    assert done.status_code == 303, text(done)[:3000]
    return browser.get(done.headers["Location"])


def enrol_page_secret(page) -> str:
    match = KEY_RE.search(text(page))
    assert match, text(page)[:2000]
    return match.group(1).replace(" ", "")


def assert_accessible_code_field(html: str) -> None:
    assert 'autocomplete="one-time-code"' in html
    assert 'inputmode="numeric"' in html
    assert '<label for="code">' in html and 'id="code"' in html


# -- enrolment from "Mon compte" ------------------------------------------------------------
def test_enrolment_shows_a_qr_code_and_needs_a_correct_first_code(app, svc, browser, clock,
                                                                   make_user):
    user = make_user()
    assert follow(browser, browser.login(user.email)).status_code == 200
    page = confirm_address(browser, svc, browser.get("/compte/mfa/activer"), user.email)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    html = text(page)
    assert re.search(r'<img[^>]+src="data:image/svg\+xml[^"]+"[^>]+alt="[^"]+"', html)
    assert "<script" not in html
    assert_accessible_code_field(html)
    secret = enrol_page_secret(page)
    assert re.search(r'id="cle-totp"[^>]*>[A-Z2-7]{4}( [A-Z2-7]{4})+<', html)  # grouped
    totp = pyotp.TOTP(secret)
    # Reloading keeps the same secret (the QR code already scanned stays valid).
    assert enrol_page_secret(browser.get("/compte/mfa/activer")) == secret

    refused = browser.submit(page, "code", {"code": wrong_code(code_at(totp))})
    assert refused.status_code == 400
    assert 'aria-invalid="true"' in text(refused) and 'href="#code"' in text(refused)
    assert "Ce code est incorrect" in text(refused)
    assert not mfa_enabled(app, svc, user.id)

    done = browser.submit(refused, "code", {"code": code_at(totp)})
    assert done.status_code == 200
    codes = RECOVERY_RE.findall(text(done))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert mfa_enabled(app, svc, user.id)
    assert "mfa.enabled" in audit_types(app, svc, user.id)
    notices = outbox(svc, user.email)
    assert any("activée" in m["text"] for m in notices)
    # Codes are stored hashed: no clear code anywhere in the table.
    stored = db_read(app, svc, lambda db: list(db.scalars(select(Consumable).where(
        Consumable.kind == "mfa_recovery", Consumable.user_id == user.id))))
    assert len(stored) == 10
    flat = " ".join(f"{c.lookup} {c.secret_hash}" for c in stored)
    assert not any(code.replace("-", "") in flat for code in codes)
    # The TOTP secret is not stored in clear either.
    credential = db_read(app, svc, lambda db: db.scalar(select(MfaCredential).where(
        MfaCredential.user_id == user.id)))
    assert secret not in credential.secret
    # The management page now says it is on, and Sécurité leads there.
    assert 'href="/compte/mfa/"' in text(browser.get("/compte/securite"))
    manage = browser.get("/compte/mfa/")
    assert "La double authentification est activée" in text(manage)
    assert "10 codes de secours" in text(manage)


def test_enabling_needs_a_recent_password(app, svc, browser, make_user):
    user = make_user()
    follow(browser, browser.login(user.email))
    make_old(app, svc, user.id)
    response = browser.get("/compte/mfa/activer")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login/reauth"


# -- login ----------------------------------------------------------------------------------
def test_login_then_requires_a_correct_code(app, svc, browser, clock, enrolled):
    user, totp = enrolled()
    response = browser.login(user.email)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login/mfa"
    page = browser.get(response.headers["Location"])
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert_accessible_code_field(text(page))
    # Not signed in yet.
    assert browser.get("/compte/").status_code == 302

    refused = browser.submit(page, "code", {"code": wrong_code(code_at(totp))})
    assert refused.status_code == 400 and "Ce code est incorrect" in text(refused)
    assert 'role="alert"' in text(refused)
    # A code of the wrong shape uses no try.
    for junk in ("12345", "abcdef", "1234567"):
        answer = browser.submit(page, "code", {"code": junk})
        assert answer.status_code == 400 and "Le code compte 6 chiffres" in text(answer)
    assert browser.submit(page, "code", {"code": " " * 6}).status_code == 400
    types = audit_types(app, svc, user.id)
    assert "mfa.challenge_failed" in types
    assert mfa_lockout.failures(svc.kv, user.id) == 1

    # One try used: the right code works.
    ok = browser.submit(page, "code", {"code": code_at(totp)})
    assert ok.status_code == 302 and ok.headers["Location"] == "/compte/"
    assert browser.get("/compte/").status_code == 200
    sso = current_sso(app, svc, user.id)
    assert sso.acr == "eidas2" and sso.amr == ["pwd", "otp"]


def test_the_session_id_changes_at_the_second_factor(app, browser, clock, enrolled):
    user, totp = enrolled()
    page = password_step(browser, user)
    cookie_name = app.session_interface.cookie_name
    before = browser.client.get_cookie(cookie_name).value
    browser.submit(page, "code", {"code": code_at(totp)})
    assert browser.client.get_cookie(cookie_name).value != before


def test_a_code_is_accepted_only_once(app, svc, browser, new_browser, clock, enrolled):
    user, totp = enrolled()
    page = password_step(browser, user)
    assert browser.submit(page, "code", {"code": code_at(totp)}).status_code == 302

    other = new_browser()
    page = password_step(other, user)
    replay = other.submit(page, "code", {"code": code_at(totp)})
    assert replay.status_code == 400
    assert "déjà été utilisé" in text(replay)
    # An older code (previous step) is refused too once a newer one was used.
    assert other.submit(page, "code", {"code": code_at(totp, -1)}).status_code == 400
    # The next step's code is fine.
    clock.now += 30
    assert other.submit(page, "code", {"code": code_at(totp, 1)}).status_code == 302


def test_concurrent_submissions_of_one_code_cannot_both_pass(app, svc, clock, enrolled):
    """Two requests that both loaded the credential before either used the code."""
    user, totp = enrolled()
    code = code_at(totp)
    with app.app_context():
        first = svc.db.session_factory()
        second = svc.db.session_factory()
        try:
            cred_a = first.scalar(select(MfaCredential).where(MfaCredential.user_id == user.id))
            cred_b = second.scalar(select(MfaCredential).where(MfaCredential.user_id == user.id))
            assert cred_a.last_used_step is None and cred_b.last_used_step is None
            assert mfa.check_totp(first, cred_a, code, svc.secret_key) == mfa.TotpResult.OK
            first.commit()
            assert mfa.check_totp(second, cred_b, code, svc.secret_key) == \
                mfa.TotpResult.REPLAYED
            second.commit()
        finally:
            first.close()
            second.close()


@pytest.mark.parametrize("offset, accepted", [(-2, False), (2, False), (-1, True), (1, True),
                                              (0, True)])
def test_one_step_of_clock_drift_is_accepted_two_are_not(browser, clock, enrolled, offset,
                                                         accepted):
    user, totp = enrolled()
    page = password_step(browser, user)
    response = browser.submit(page, "code", {"code": code_at(totp, offset)})
    assert response.status_code == (302 if accepted else 400)


def test_five_wrong_codes_restart_the_login(app, svc, browser, clock, lock_clock, enrolled):
    user, totp = enrolled()
    page = password_step(browser, user)
    flow_id = query_of(page.request.url)["flow"]
    bad = wrong_code(code_at(totp, -1), code_at(totp), code_at(totp, 1))
    for _ in range(4):
        assert browser.submit(page, "code", {"code": bad}).status_code == 400
        lock_clock.advance(1000)  # past the growing delay
    fifth = browser.submit(page, "code", {"code": bad})
    assert fifth.status_code == 302
    assert urlsplit(fifth.headers["Location"]).path == "/login"
    assert read_flow(svc.kv, flow_id) is None
    # The old flow is gone: even the right code does not sign in through it.
    late = browser.post(f"/login/mfa?flow={flow_id}",
                        data={"csrf_token": csrf_token(page.data), "code": code_at(totp)})
    assert late.status_code == 302 and urlsplit(late.headers["Location"]).path == "/login"
    assert browser.get("/compte/").status_code == 302
    restarted = follow(browser, fifth)
    assert "Trop de codes incorrects" in text(restarted)
    # A new login works.
    lock_clock.advance(1000)
    page = password_step(browser, user)
    assert browser.submit(page, "code", {"code": code_at(totp)}).status_code == 302


# -- recovery codes -------------------------------------------------------------------------
def recovery_codes_for(app, svc, user):
    def run(db):
        codes = mfa.new_recovery_codes(db, db.get(User, user.id), svc.secret_key)
        db.commit()
        return codes
    return db_read(app, svc, run)


def test_recovery_codes_are_single_use(app, svc, browser, new_browser, clock, enrolled):
    user, _totp = enrolled()
    codes = recovery_codes_for(app, svc, user)
    page = password_step(browser, user)
    recovery_page = browser.get(f"/login/mfa/secours?flow={query_of(page.request.url)['flow']}")
    assert recovery_page.status_code == 200
    assert 'autocomplete="one-time-code"' in text(recovery_page)
    ok = browser.submit(recovery_page, "code", {"code": codes[0]})
    assert ok.status_code == 302 and browser.get("/compte/").status_code == 200
    sso = current_sso(app, svc, user.id)
    assert sso.acr == "eidas2" and sso.amr == ["pwd", "otp"]
    assert "mfa.recovery_code_used" in audit_types(app, svc, user.id)

    other = new_browser()
    page = password_step(other, user)
    recovery_page = other.get(f"/login/mfa/secours?flow={query_of(page.request.url)['flow']}")
    again = other.submit(recovery_page, "code", {"code": codes[0]})
    assert again.status_code == 400 and "déjà été utilisé" in text(again)
    # Typed loosely (lower case, no dashes, spaces) another code works.
    loose = " " + codes[1].replace("-", "").lower() + " "
    assert other.submit(recovery_page, "code", {"code": loose}).status_code == 302
    assert db_read(app, svc, lambda db: mfa.recovery_codes_left(db, db.get(User, user.id))) == 8


def test_recovery_codes_belong_to_their_owner(app, svc, browser, clock, enrolled):
    owner, _ = enrolled()
    codes = recovery_codes_for(app, svc, owner)
    other, _ = enrolled()
    page = password_step(browser, other)
    recovery_page = browser.get(f"/login/mfa/secours?flow={query_of(page.request.url)['flow']}")
    assert browser.submit(recovery_page, "code", {"code": codes[0]}).status_code == 400


# -- population policy ----------------------------------------------------------------------
def test_an_elu_without_mfa_enrols_right_after_the_password(app, svc, browser, clock,
                                                           make_user):
    user = make_user(population="elu")
    response = browser.login(user.email)
    assert urlsplit(response.headers["Location"]).path == "/login/mfa"
    page = follow(browser, response)
    assert urlsplit(page.request.url).path == "/login/mfa/activer"
    assert "obligatoire" in text(page)
    assert browser.get("/compte/").status_code == 302  # not signed in before enrolling
    page = confirm_address(browser, svc, page, user.email)
    html = text(page)
    assert "obligatoire" in html and 'src="data:image/svg+xml' in html
    assert_accessible_code_field(html)
    assert browser.get("/compte/").status_code == 302  # not signed in before enrolling
    totp = pyotp.TOTP(enrol_page_secret(page))
    assert browser.submit(page, "code", {"code": "000000" if code_at(totp) != "000000"
                                         else "111111"}).status_code == 400
    done = browser.submit(page, "code", {"code": code_at(totp)})
    assert done.status_code == 200
    assert len(RECOVERY_RE.findall(text(done))) == 10
    assert 'href="/compte/"' in text(done)
    assert browser.get("/compte/").status_code == 200
    sso = current_sso(app, svc, user.id)
    assert sso.acr == "eidas2" and sso.amr == ["pwd", "otp"]
    assert mfa_enabled(app, svc, user.id)
    assert "mfa.enabled" in audit_types(app, svc, user.id)
    # An elu cannot switch it off.
    assert browser.get("/compte/mfa/desactiver").status_code == 403


def test_a_usager_without_mfa_signs_in_with_the_password_alone(app, svc, browser, make_user):
    user = make_user()
    response = browser.login(user.email)
    assert response.headers["Location"] == "/compte/"
    assert current_sso(app, svc, user.id).acr == "eidas1"


# -- acr eidas2 from a relying party --------------------------------------------------------
def id_token_claims(browser, rp, location, verifier):
    result = query_of(location)
    assert "code" in result, result
    token = exchange(browser, rp, result["code"], verifier)
    assert token.status_code == 200, token.json
    keys = KeySet.import_key_set(browser.get("/jwks.json").json)
    return jwt.decode(token.json["id_token"], keys).claims


def test_acr_eidas2_request_ends_with_a_two_factor_id_token(app, browser, rp, clock, enrolled):
    user, totp = enrolled()
    response, verifier, _ = browser.authorize(rp, acr_values="eidas2")
    login_page = follow(browser, response)
    page = follow(browser, browser.submit(login_page, "email",
                                          {"email": user.email, "password": PASSWORD}))
    assert urlsplit(page.request.url).path == "/login/mfa"
    done = browser.submit(page, "code", {"code": code_at(totp)})
    assert done.status_code == 302 and done.headers["Location"].startswith("/authorize/resume/")
    back = browser.get(done.headers["Location"])
    assert back.status_code == 302 and back.headers["Location"].startswith(rp.redirect_uri + "?")
    claims = id_token_claims(browser, rp, back.headers["Location"], verifier)
    assert claims["acr"] == "eidas2" and "otp" in claims["amr"] and "pwd" in claims["amr"]


def test_step_up_from_a_password_session_to_eidas2(app, svc, browser, rp, clock, make_user):
    """Signed in with the password only (eidas1), a relying party asks for eidas2: the
    password is asked again, the second factor is set up, and the client gets eidas2."""
    user = make_user()
    follow(browser, browser.login(user.email))
    assert current_sso(app, svc, user.id).acr == "eidas1"
    silent, _, _ = browser.authorize(rp, acr_values="eidas2", prompt="none")
    assert query_of(silent.headers["Location"])["error"] == "interaction_required"

    response, verifier, _ = browser.authorize(rp, acr_values="eidas2")
    login_page = follow(browser, response)
    assert 'name="password"' in text(login_page)
    page = follow(browser, browser.submit(login_page, "email",
                                          {"email": user.email, "password": PASSWORD}))
    assert urlsplit(page.request.url).path == "/login/mfa/activer"
    assert "demande une double authentification" in text(page)
    page = confirm_address(browser, svc, page, user.email)
    totp = pyotp.TOTP(enrol_page_secret(page))
    done = browser.submit(page, "code", {"code": code_at(totp)})
    assert done.status_code == 200 and len(RECOVERY_RE.findall(text(done))) == 10
    continue_url = re.search(r'href="(/authorize/resume/[^"]+)"', text(done)).group(1)
    back = follow(browser, browser.get(continue_url))
    assert back.headers["Location"].startswith(rp.redirect_uri)
    claims = id_token_claims(browser, rp, back.headers["Location"], verifier)
    assert claims["acr"] == "eidas2" and "otp" in claims["amr"]


def test_eidas2_request_without_a_session_sets_up_the_second_factor(browser, rp, clock,
                                                                   make_user):
    user = make_user()
    response, verifier, _ = browser.authorize(rp, acr_values="eidas2")
    login_page = follow(browser, response)
    page = follow(browser, browser.submit(login_page, "email",
                                          {"email": user.email, "password": PASSWORD}))
    assert page.status_code == 200, "signed in with the password alone"
    assert urlsplit(page.request.url).path == "/login/mfa/activer"


# -- disabling ------------------------------------------------------------------------------
def test_disabling_needs_a_recent_password_and_a_code_and_sends_a_notice(
        app, svc, browser, clock, enrolled):
    user, totp = enrolled()
    recovery_codes_for(app, svc, user)
    page = password_step(browser, user)
    browser.submit(page, "code", {"code": code_at(totp)})
    make_old(app, svc, user.id)

    response = browser.get("/compte/mfa/desactiver")
    assert response.status_code == 302
    reauth = browser.get(response.headers["Location"])
    assert urlsplit(reauth.request.url).path == "/login/reauth"
    back = browser.submit(reauth, "password", {"password": PASSWORD})
    assert urlsplit(back.headers["Location"]).path == "/compte/mfa/desactiver"
    confirm = browser.get(back.headers["Location"])
    assert confirm.status_code == 200
    assert confirm.headers["Cache-Control"] == "no-store"

    # The code already used at login does not work again; a wrong one neither.
    assert browser.submit(confirm, "code", {"code": code_at(totp)}).status_code == 400
    assert mfa_enabled(app, svc, user.id)
    clock.now += 30
    done = browser.submit(confirm, "code", {"code": code_at(totp, 1)})
    assert done.status_code == 303
    assert not mfa_enabled(app, svc, user.id)
    assert db_read(app, svc, lambda db: mfa.recovery_codes_left(db, db.get(User, user.id))) == 0
    assert "mfa.disabled" in audit_types(app, svc, user.id)
    notices = outbox(svc, user.email)
    assert any("désactivée" in m["text"] for m in notices)
    assert "n'est pas activée" in text(browser.get("/compte/mfa/"))
    # Next login: the password alone.
    browser.post("/logout", data={"csrf_token": csrf_token(browser.get("/compte/mfa/").data),
                                  "confirm": "yes"})
    assert browser.login(user.email).headers["Location"] == "/compte/"


def test_new_recovery_codes_replace_the_old_ones(app, svc, browser, clock, enrolled):
    user, totp = enrolled()
    old = recovery_codes_for(app, svc, user)
    page = password_step(browser, user)
    browser.submit(page, "code", {"code": code_at(totp)})
    confirm = browser.get("/compte/mfa/codes-de-secours")
    assert confirm.status_code == 200
    done = browser.post("/compte/mfa/codes-de-secours",
                        data={"csrf_token": csrf_token(confirm.data)})
    new = RECOVERY_RE.findall(text(done))
    assert len(new) == 10 and not set(new) & set(old)
    left = db_read(app, svc, lambda db: mfa.recovery_codes_left(db, db.get(User, user.id)))
    assert left == 10


# -- guessing, counted per account (review 2026-12, finding 2) ------------------------------
def test_wrong_codes_count_per_account_across_login_flows(app, svc, new_browser, clock,
                                                          lock_clock, enrolled):
    """The failure counter lived in the login flow, and a right password cleared the
    account's lockout: 4 flows of 5 wrong codes raised no block, and the right code was
    then accepted. Now the account's wrong codes add up, whatever the flow."""
    user, totp = enrolled()
    bad = wrong_code(code_at(totp, -1), code_at(totp), code_at(totp, 1))
    blocked = []
    for _ in range(4):
        browser = new_browser()
        page = password_step(browser, user)  # the password is right every time
        for _ in range(5):
            answer = browser.submit(page, "code", {"code": bad})
            if answer.status_code == 302:  # this flow's 5 tries are used
                break
            if "la double authentification est bloquée" in text(answer):
                blocked.append(answer)
            else:  # wait out the growing delay, as a patient attacker would
                lock_clock.advance(mfa_lockout.delay_for(
                    svc.settings, mfa_lockout.failures(svc.kv, user.id)) + 1)
    assert blocked, "20 wrong codes and no block"
    assert mfa_lockout.failures(svc.kv, user.id) == svc.settings.mfa.block_after
    # Even the right code, after the right password in a new flow, is refused now.
    browser = new_browser()
    page = password_step(browser, user)
    refused = browser.submit(page, "code", {"code": code_at(totp)})
    assert refused.status_code == 400 and "bloquée pendant 1 heure" in text(refused)
    assert browser.get("/compte/").status_code == 302
    # The owner was told once, and advised to change the password.
    notices = [m for m in outbox(svc, user.email) if "incorrects" in m["subject"]]
    assert len(notices) == 1 and "connaît votre mot de passe" in notices[0]["text"]
    assert "mfa.locked" in audit_types(app, svc, user.id)
    # The block ends; a right code does not wipe the count of the wrong ones.
    lock_clock.advance(svc.settings.mfa.block_duration + 1)
    assert browser.submit(page, "code", {"code": code_at(totp)}).status_code == 302
    assert mfa_lockout.failures(svc.kv, user.id) == svc.settings.mfa.block_after


def test_concurrent_guesses_are_counted_one_at_a_time(app, svc, enrolled):
    user, _totp = enrolled()
    assert mfa_lockout.begin(svc.kv, svc.settings, user.id).allowed
    busy = mfa_lockout.begin(svc.kv, svc.settings, user.id)
    assert not busy.allowed and busy.retry_after == mfa_lockout.BUSY_RETRY
    mfa_lockout.failed(svc.kv, svc.settings, user.id)
    assert mfa_lockout.begin(svc.kv, svc.settings, user.id).allowed
    mfa_lockout.succeeded(svc.kv, svc.settings, user.id)
    assert mfa_lockout.failures(svc.kv, user.id) == 1


# -- who may set up or replace the second factor (review 2026-12, finding 9) ---------------
def test_the_password_alone_sets_up_no_authenticator(app, svc, browser, clock, make_user):
    """/login/mfa/activer enrolled on first use with the password alone."""
    user = make_user(population="elu")
    page = follow(browser, browser.login(user.email))
    assert urlsplit(page.request.url).path == "/login/mfa/activer"
    assert "cle-totp" not in text(page) and "data:image/svg" not in text(page)
    assert db_read(app, svc, lambda db: db.scalar(select(MfaCredential).where(
        MfaCredential.user_id == user.id))) is None
    sent = browser.submit(page, "send", button=("send", "1"))
    assert "u***@example.org" in text(sent) and "Un code vient d" in text(sent)
    wrong = browser.submit(sent, "code", {"code": "000000"})
    assert wrong.status_code == 400 and "Ce code est incorrect" in text(wrong)
    assert browser.submit(sent, "code", {"code": "12"}).status_code == 400
    assert "cle-totp" not in text(wrong)
    assert not mfa_enabled(app, svc, user.id)


def test_the_first_authenticator_from_mon_compte_needs_the_login_address(
        app, svc, browser, clock, make_user):
    user = make_user()
    follow(browser, browser.login(user.email))
    page = browser.get("/compte/mfa/activer")
    assert "Confirmer votre adresse e-mail" in text(page) and "cle-totp" not in text(page)
    # Posting a code straight away sets up nothing.
    assert browser.post("/compte/mfa/activer", data={
        "csrf_token": csrf_token(page.data), "code": "123456"}).status_code == 400
    assert not mfa_enabled(app, svc, user.id)
    qr = confirm_address(browser, svc, page, user.email)
    assert "cle-totp" in text(qr)


def test_replacing_the_app_needs_a_code_of_the_current_one(app, svc, browser, clock,
                                                          lock_clock, enrolled):
    """/compte/mfa/activer replaced an authenticator with the password alone."""
    user, totp = enrolled()
    codes = recovery_codes_for(app, svc, user)
    browser.submit(password_step(browser, user), "code", {"code": code_at(totp)})
    page = browser.get("/compte/mfa/activer")
    assert page.status_code == 200
    assert "Changer d'application d'authentification" in text(page)
    assert "cle-totp" not in text(page)
    refused = browser.submit(page, "code", {"code": wrong_code(code_at(totp, 1))})
    assert refused.status_code == 400 and "cle-totp" not in text(refused)
    assert mfa_lockout.failures(svc.kv, user.id) == 1
    # A recovery code will do (the app may be what was lost).
    accepted = browser.submit(refused, "code", {"code": codes[0]})
    assert accepted.status_code == 303
    qr = browser.get(accepted.headers["Location"])
    new_totp = pyotp.TOTP(enrol_page_secret(qr))
    done = browser.submit(qr, "code", {"code": code_at(new_totp)})
    assert done.status_code == 200 and len(RECOVERY_RE.findall(text(done))) == 10
    # The old app no longer works; the new one does.
    other = follow(browser, browser.get("/compte/mfa/"))
    assert other.status_code == 200
    credential = db_read(app, svc, lambda db: list(db.scalars(select(MfaCredential).where(
        MfaCredential.user_id == user.id))))
    assert len(credential) == 1
    assert mfa.unseal(svc.secret_key, user.id, credential[0].secret) == new_totp.secret


def request_reset(browser, svc, user, page):
    """From the challenge page: "no app nor recovery code", the login address confirmed."""
    lost = browser.get(re.search(r'href="(/login/mfa/perdu\?flow=[^"]+)"', text(page)).group(1))
    assert lost.status_code == 200
    confirmed = confirm_address(browser, svc, lost, user.email)
    assert confirmed.status_code == 200
    return confirmed


def mature_resets(app, svc, user_id):
    past = (utcnow() - dt.timedelta(seconds=1)).timestamp()

    def run(db):
        for item in db.scalars(select(Consumable).where(Consumable.kind == "mfa_reset",
                                                        Consumable.user_id == user_id)):
            item.data = {**item.data, "not_before": past}
        db.commit()
    db_read(app, svc, run)


def test_the_owner_without_the_app_gets_the_second_factor_removed_after_a_delay(
        app, svc, browser, new_browser, clock, enrolled):
    """A password reset kept an authenticator set up by whoever had the password: the
    owner had no way back that did not go through that person's phone."""
    user, totp = enrolled(phone_number="+33612345678", phone_number_verified=True)
    page = password_step(browser, user)
    done = request_reset(browser, svc, user, page)
    assert "sera désactivée à votre première connexion à partir du" in text(done)
    assert "mfa.reset_requested" in audit_types(app, svc, user.id)
    # The owner is told at the login address and by SMS.
    requested = [m for m in outbox(svc, user.email) if "Demande de désactivation" in m["subject"]]
    assert len(requested) == 1
    assert [m for m in outbox(svc, "+33612345678") if "désactivation" in m["text"]]
    # Within the delay the second factor is still asked for, and the page says why.
    other = new_browser()
    page = password_step(other, user)
    assert urlsplit(page.request.url).path == "/login/mfa"
    assert "Une demande de désactivation" in text(page)
    assert other.get("/compte/").status_code == 302
    # After the delay: removed at the next sign-in, which goes on with the password.
    mature_resets(app, svc, user.id)
    later = new_browser()
    response = later.login(user.email)
    signed_in = follow(later, response)
    assert signed_in.status_code == 200 and urlsplit(signed_in.request.url).path == "/compte/"
    assert not mfa_enabled(app, svc, user.id)
    assert current_sso(app, svc, user.id).acr == "eidas1"
    assert "mfa.reset" in audit_types(app, svc, user.id)
    assert [m for m in outbox(svc, user.email) if "est désactivée" in m["subject"]]


def test_a_sign_in_with_the_app_cancels_a_request_to_remove_it(app, svc, browser,
                                                                new_browser, clock, enrolled):
    user, totp = enrolled()
    request_reset(browser, svc, user, password_step(browser, user))
    owner = new_browser()
    page = password_step(owner, user)
    assert owner.submit(page, "code", {"code": code_at(totp)}).status_code == 302
    assert "mfa.reset_cancelled" in audit_types(app, svc, user.id)
    assert [m for m in outbox(svc, user.email) if "annulée" in m["subject"]]
    mature_resets(app, svc, user.id)
    again = password_step(new_browser(), user)
    assert urlsplit(again.request.url).path == "/login/mfa"
    assert mfa_enabled(app, svc, user.id)


def test_a_required_second_factor_is_set_up_again_after_its_removal(
        app, svc, browser, new_browser, clock, enrolled):
    user, _totp = enrolled(population="elu")
    request_reset(browser, svc, user, password_step(browser, user))
    mature_resets(app, svc, user.id)
    later = new_browser()
    page = follow(later, later.login(user.email))
    assert urlsplit(page.request.url).path == "/login/mfa/activer"
    assert not mfa_enabled(app, svc, user.id)
    assert later.get("/compte/").status_code == 302

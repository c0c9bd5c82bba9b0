"""The console's actions on accounts and clients, and what they do: lock and unlock an
account, force a password reset, resend the confirmation e-mail, disable and enable a
client, a client's recent errors, initial access tokens. Each is audited with the
administrator who did it; who may do them is tested in test_console.py."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from idp.admin import initial_tokens
from idp.messaging.outbox import read_outbox
from idp.persistence.models import Client, Consumable, Grant, InitialAccessToken, SsoSession, User
from idp.security import lockout
from tests.admin.test_console import events, form_to, load
from tests.conftest import _wipe, _wipe_redis, basic_auth
from tests.flows.conftest import STRONG_PASSWORD, link_in, post_form
from tests.flows.test_recovery import ask_code, code_of, through_progress
from tests.flows.test_registration import confirm
from tests.oidc.test_code_flow import exchange
from tests.support import PASSWORD, csrf_token, query_of

TOKEN_RE = re.compile(r'<code id="jeton">([A-Za-z0-9_-]{40,})</code>')


@pytest.fixture
def app(make_app):
    """The suite's app, with the captcha that accepts ``captcha_payload=test-pass`` (the
    owner of an account goes through « Mot de passe perdu »), and a login block after 3
    wrong passwords without delays before."""
    application = make_app(registration={"captcha_backend": "test"},
                           rate_limits={"account_failures_before_delay": 100,
                                        "account_block_after": 3})
    _wipe(application.extensions["idp"].db)
    _wipe_redis()
    yield application
    application.extensions["idp"].db.remove()


def outbox(svc, to: str) -> list[dict]:
    messages = read_outbox(svc.settings.resolve_path(svc.settings.messaging.outbox_dir))
    return [m for m in messages if m["to"] == to]


def submit(console, page, action_end: str, values=None):
    form = form_to(page, action_end)
    return console.post(form["action"], data={**form["fields"], **(values or {})})


def signed_in_with_offline_grant(new_browser, rp, citizen):
    """A browser where the citizen is signed in, and the tokens a démarche got."""
    theirs = new_browser()
    response, verifier, _ = theirs.authorize(rp, scope="openid offline_access")
    location = theirs.follow_to_client(response, email=citizen.email)
    tokens = exchange(theirs, rp, query_of(location)["code"], verifier).json
    assert theirs.get("/compte/").status_code == 200
    return theirs, tokens


def assert_all_ended(app, svc, user_id):
    with app.app_context():
        assert all(s.ended_at for s in svc.db.session.scalars(
            select(SsoSession).where(SsoSession.user_id == user_id)))
        assert all(g.revoked_at for g in svc.db.session.scalars(
            select(Grant).where(Grant.user_id == user_id)))


# -- lock and unlock --------------------------------------------------------------------
def test_lock_ends_sessions_and_grants_and_refuses_sign_in_then_unlock(
        app, svc, console, admin, citizen, new_browser, rp):
    theirs, tokens = signed_in_with_offline_grant(new_browser, rp, citizen)
    page = console.get(f"/admin/usagers/{citizen.id}")
    # A reason is required.
    refused = submit(console, page, "/verrouillage", {"reason": ""})
    assert refused.status_code == 400 and "Indiquez le motif" in refused.get_data(as_text=True)
    assert not load(app, svc, User, citizen.id).disabled

    done = submit(console, page, "/verrouillage", {"reason": "usurpation signalée"})
    assert done.status_code == 302
    assert load(app, svc, User, citizen.id).disabled
    assert theirs.get("/compte/").status_code == 302  # signed out
    refresh = theirs.post("/token", headers=basic_auth(rp), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.json["error"] == "invalid_grant"
    access = theirs.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert access.status_code == 401
    assert_all_ended(app, svc, citizen.id)
    assert new_browser().login(citizen.email).status_code == 400  # cannot sign in
    (event,) = events(app, svc, "admin.user_locked")
    assert event.user_id == citizen.id and event.details["admin_id"] == admin.id
    assert event.details["reason"] == "usurpation signalée"
    assert event.details["sessions_ended"] == 1 and event.details["grants_revoked"] == 1
    html = console.get(f"/admin/usagers/{citizen.id}").get_data(as_text=True)
    assert "verrouillé" in html and "usurpation signalée" in html and admin.id in html

    page = console.get(f"/admin/usagers/{citizen.id}")
    assert submit(console, page, "/deverrouillage").status_code == 302
    assert not load(app, svc, User, citizen.id).disabled
    assert new_browser().login(citizen.email).status_code == 302
    (event,) = events(app, svc, "admin.user_unlocked")
    assert event.user_id == citizen.id and event.details["admin_id"] == admin.id
    assert event.details["was_locked"] is True


def test_unlock_lifts_a_block_after_too_many_wrong_passwords(app, svc, console, admin, citizen,
                                                            new_browser):
    with app.app_context():
        for _ in range(svc.settings.rate_limits.account_block_after + 1):
            decision = lockout.begin(svc.kv, svc.settings, citizen.email)
            if decision.allowed:
                lockout.failed(svc.kv, svc.settings, citizen.email)
        assert lockout.blocked_until(svc.kv, citizen.email)
    login = new_browser()
    page = login.get("/login")
    blocked = post_form(login, page, "email", {"email": citizen.email, "password": PASSWORD,
                                               "captcha_payload": "test-pass"})
    assert blocked.status_code == 429
    page = console.get(f"/admin/usagers/{citizen.id}")
    assert "connexions bloquées" in page.get_data(as_text=True)
    assert submit(console, page, "/deverrouillage").status_code == 302
    assert new_browser().login(citizen.email).status_code == 302
    (event,) = events(app, svc, "admin.user_unlocked")
    assert event.details["was_locked"] is False and event.details["login_failures_cleared"]


def test_an_admin_cannot_lock_their_own_account(app, svc, console, admin):
    token = csrf_token(console.get(f"/admin/usagers/{admin.id}").data)
    done = console.post(f"/admin/usagers/{admin.id}/verrouillage",
                        data={"csrf_token": token, "reason": "essai"})
    assert done.status_code == 302
    assert not load(app, svc, User, admin.id).disabled
    assert console.get("/admin/").status_code == 200
    assert events(app, svc, "admin.user_locked") == []


# -- forced password reset ----------------------------------------------------------------
def test_force_a_password_reset(app, svc, console, admin, citizen, new_browser, rp):
    theirs, tokens = signed_in_with_offline_grant(new_browser, rp, citizen)
    page = console.get(f"/admin/usagers/{citizen.id}")
    done = submit(console, page, "/reinitialisation")
    assert done.status_code == 302
    assert "prévenu par e-mail" in console.get(done.headers["Location"]).get_data(as_text=True)
    # The password stops working, sessions and token families end.
    assert load(app, svc, User, citizen.id).password_hash is None
    assert new_browser().login(citizen.email).status_code == 400
    assert theirs.get("/compte/").status_code == 302
    assert_all_ended(app, svc, citizen.id)
    (event,) = events(app, svc, "admin.password_reset_forced")
    assert event.user_id == citizen.id and event.details["admin_id"] == admin.id
    # The owner is told, with the way to choose a new password.
    (message,) = outbox(svc, citizen.email)
    assert "nouveau mot de passe" in message["subject"]
    assert "/mot-de-passe-perdu" in message["text"] and "Mot de passe perdu" in message["text"]

    # « Mot de passe perdu » gives the account a new password.
    owner = new_browser()
    asked = ask_code(owner, citizen.email)
    code_page = owner.get(asked.headers["Location"])
    code = code_of(outbox(svc, citizen.email)[-1])
    chosen = post_form(owner, code_page, "code", {"code": code})
    new_page = owner.get(chosen.headers["Location"])
    finished = post_form(owner, new_page, "password", {"password": STRONG_PASSWORD,
                                                        "password_confirm": STRONG_PASSWORD})
    through_progress(owner, finished)
    assert new_browser().login(citizen.email, STRONG_PASSWORD).status_code == 302
    assert new_browser().login(citizen.email, PASSWORD).status_code == 400


def test_an_admin_cannot_force_their_own_reset(app, svc, console, admin):
    token = csrf_token(console.get(f"/admin/usagers/{admin.id}").data)
    console.post(f"/admin/usagers/{admin.id}/reinitialisation", data={"csrf_token": token})
    assert load(app, svc, User, admin.id).password_hash is not None
    assert console.get("/admin/").status_code == 200


# -- the confirmation e-mail ------------------------------------------------------------
def test_resend_the_confirmation_email(app, svc, console, admin, user_factory, new_browser):
    unconfirmed = user_factory(email="jean.martin@example.org", email_verified=False)
    page = console.get(f"/admin/usagers/{unconfirmed.id}")
    assert "Renvoyer l'e-mail de confirmation" in page.get_data(as_text=True)
    assert submit(console, page, "/confirmation").status_code == 302
    (message,) = outbox(svc, unconfirmed.email)
    (event,) = events(app, svc, "admin.confirmation_resent")
    assert event.user_id == unconfirmed.id and event.details["admin_id"] == admin.id
    with app.app_context():
        live = svc.db.session.scalars(select(Consumable).where(
            Consumable.user_id == unconfirmed.id, Consumable.kind == "email_confirmation",
            Consumable.revoked_at.is_(None))).all()
        assert len(live) == 1
    # The link confirms the address.
    assert confirm(new_browser(), link_in(message)).status_code == 200
    assert load(app, svc, User, unconfirmed.id).email_verified
    # Nothing to send for a confirmed address.
    page = console.get(f"/admin/usagers/{unconfirmed.id}")
    assert "Renvoyer l'e-mail de confirmation" not in page.get_data(as_text=True)
    token = csrf_token(page.data)
    console.post(f"/admin/usagers/{unconfirmed.id}/confirmation", data={"csrf_token": token})
    assert len(outbox(svc, unconfirmed.email)) == 1


# -- disabled clients ---------------------------------------------------------------------
def test_a_disabled_client_is_refused_everywhere_until_enabled(app, svc, console, admin, rp,
                                                              citizen, new_browser):
    theirs, tokens = signed_in_with_offline_grant(new_browser, rp, citizen)
    page = console.get(f"/admin/clients/{rp.client_id}")
    assert submit(console, page, "/desactivation").status_code == 302
    assert load(app, svc, Client, rp.client_id).disabled
    (event,) = events(app, svc, "admin.client_disabled")
    assert event.client_id == rp.client_id and event.details["admin_id"] == admin.id

    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    refresh = theirs.post("/token", headers=basic_auth(rp), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401 and refresh.json["error"] == "invalid_client"
    assert theirs.get("/userinfo", headers=auth).status_code == 401
    introspection = theirs.post("/introspect", headers=basic_auth(rp),
                                data={"token": tokens["access_token"]})
    assert introspection.status_code == 401
    authorization, _, _ = theirs.authorize(rp)
    assert authorization.status_code == 400  # an error page, no redirect to the client
    assert "invalid_client" in authorization.get_data(as_text=True)
    # Another client with the introspection scope sees the tokens as inactive.
    with app.app_context():
        from idp.admin.clients import create_client
        resource, secret = create_client(svc.db.session, name="API", redirect_uris=[],
                                         grant_types=["client_credentials"],
                                         scopes=["introspection"])
        svc.db.session.commit()
        resource_id = resource.client_id
    api = type(rp)(resource_id, secret, "")
    for value in (tokens["access_token"], tokens["refresh_token"]):
        seen = theirs.post("/introspect", headers=basic_auth(api), data={"token": value})
        assert seen.status_code == 200 and seen.json == {"active": False}
    # The console lists its errors.
    errors = console.get(f"/admin/clients/{rp.client_id}/erreurs").get_data(as_text=True)
    assert "token.error" in errors and "introspection.error" in errors
    assert "authorize.error" in errors and "invalid_client" in errors

    page = console.get(f"/admin/clients/{rp.client_id}")
    assert submit(console, page, "/activation").status_code == 302
    assert not load(app, svc, Client, rp.client_id).disabled
    assert theirs.get("/userinfo", headers=auth).status_code == 200
    assert events(app, svc, "admin.client_enabled")[0].details["admin_id"] == admin.id


def test_a_clients_recent_errors(app, svc, console, rp, client_factory, citizen, new_browser):
    other = client_factory(name="Autre")
    browser = new_browser()
    # A wrong secret, an expired code, an unregistered redirect URI, a refused consent.
    wrong = type(rp)(rp.client_id, "pas-le-secret", rp.redirect_uri)
    browser.post("/token", headers=basic_auth(wrong), data={"grant_type": "client_credentials"})
    browser.post("/token", headers=basic_auth(rp), data={
        "grant_type": "authorization_code", "code": "expire", "redirect_uri": rp.redirect_uri,
        "code_verifier": "x" * 43})
    browser.authorize(rp, redirect_uri="https://ailleurs.example/cb")
    third_party = client_factory(name="Tiers", require_consent=True)
    response, _, _ = browser.authorize(third_party)
    browser.follow_to_client(response, email=citizen.email, consent=False)
    # Another client's errors and unknown clients' stay out of this client's page.
    browser.post("/token", headers=basic_auth(type(rp)(other.client_id, "x", "")),
                 data={"grant_type": "client_credentials"})
    browser.post("/token", headers=basic_auth(type(rp)("inconnu", "x", "")),
                 data={"grant_type": "client_credentials"})

    page = console.get(f"/admin/clients/{rp.client_id}")
    assert "Erreurs récentes" in page.get_data(as_text=True)
    html = console.get(f"/admin/clients/{rp.client_id}/erreurs").get_data(as_text=True)
    assert html.count("token.error") == 2 and "invalid_client" in html
    assert "invalid_grant" in html
    assert "authorize.error" in html and "ailleurs.example" in html
    assert other.client_id not in html and "consent.denied" not in html
    tiers = console.get(f"/admin/clients/{third_party.client_id}/erreurs").get_data(as_text=True)
    assert "consent.denied" in tiers
    with app.app_context():
        from idp.persistence.models import AuditEvent
        assert svc.db.session.scalar(select(AuditEvent).where(
            AuditEvent.client_id == "inconnu")) is None
    # Secrets never reach the trail.
    assert "pas-le-secret" not in html


# -- initial access tokens ----------------------------------------------------------------
def test_issue_list_use_and_revoke_initial_access_tokens(app, svc, console, admin, browser):
    page = console.get("/admin/jetons-enregistrement")
    assert page.status_code == 200
    created = submit(console, page, "/jetons-enregistrement",
                     {"label": "Portail des aides, recette", "days": "3", "max_uses": "2"})
    assert created.status_code == 200
    html = created.get_data(as_text=True)
    value = TOKEN_RE.search(html).group(1)
    assert "plus jamais affiché" in html and "/register" in html
    with app.app_context():
        (token,) = svc.db.session.scalars(select(InitialAccessToken)).all()
        assert token.token_hash == initial_tokens.token_digest(value)
        assert token.max_uses == 2 and token.created_by == admin.id
        left = token.expires_at - dt.datetime.now(dt.timezone.utc)
        assert dt.timedelta(days=2, hours=23) < left <= dt.timedelta(days=3)
        token_id = token.id
    (event,) = events(app, svc, "admin.initial_access_token_created")
    assert event.details["admin_id"] == admin.id and value not in str(event.details)
    listing = console.get("/admin/jetons-enregistrement").get_data(as_text=True)
    assert "Portail des aides, recette" in listing and value not in listing

    registered = browser.post("/register", headers={"Authorization": f"Bearer {value}"},
                              json={"client_name": "Aides",
                                    "redirect_uris": ["https://aides.example/cb"]})
    assert registered.status_code == 201
    client_page = console.get(f"/admin/clients/{registered.json['client_id']}")
    assert "Portail des aides, recette" in client_page.get_data(as_text=True)

    page = console.get("/admin/jetons-enregistrement")
    assert submit(console, page, f"/{token_id}/revocation").status_code == 302
    assert browser.post("/register", headers={"Authorization": f"Bearer {value}"},
                        json={"client_name": "Aides",
                              "redirect_uris": ["https://aides.example/cb"]}).status_code == 401
    assert events(app, svc, "admin.initial_access_token_revoked")[0].details["admin_id"] == \
        admin.id
    assert "révoqué" in console.get("/admin/jetons-enregistrement").get_data(as_text=True)


@pytest.mark.parametrize("values, message", [
    ({"label": "", "days": "3"}, "Indiquez à qui"),
    ({"label": "x", "days": ""}, "durée de validité"),
    ({"label": "x", "days": "0"}, "Au moins un jour"),
    ({"label": "x", "days": "91"}, "90 jours au plus"),
    ({"label": "x", "days": "trois"}, "pas un entier valide"),
    ({"label": "x", "days": "3", "max_uses": "0"}, "Entre 1 et 1000"),
    ({"label": "x" * 201, "days": "3"}, "200 caractères"),
])
def test_bad_token_input_rerenders_the_form_in_french(app, svc, console, values, message):
    page = console.get("/admin/jetons-enregistrement")
    response = submit(console, page, "/jetons-enregistrement", values)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'role="alert"' in html
    with app.app_context():
        assert svc.db.session.scalar(select(InitialAccessToken)) is None


def test_the_new_console_pages_are_accessible(app, svc, console, admin, citizen, rp,
                                              user_factory):
    from tests.a11y import assert_accessible

    unconfirmed = user_factory(email="jean.martin@example.org", email_verified=False)
    pages = {
        "account": console.get(f"/admin/usagers/{citizen.id}"),
        "unconfirmed account": console.get(f"/admin/usagers/{unconfirmed.id}"),
        "client": console.get(f"/admin/clients/{rp.client_id}"),
        "client errors": console.get(f"/admin/clients/{rp.client_id}/erreurs"),
        "tokens": console.get("/admin/jetons-enregistrement"),
    }
    page = pages["tokens"]
    pages["token issued"] = submit(console, page, "/jetons-enregistrement",
                                   {"label": "Portail", "days": "3"})
    pages["tokens, listed"] = console.get("/admin/jetons-enregistrement")
    pages["tokens, errors"] = submit(console, pages["tokens, listed"], "/jetons-enregistrement",
                                     {"label": "", "days": "0"})
    pages["lock, errors"] = submit(console, pages["account"], "/verrouillage", {"reason": ""})
    for name, response in pages.items():
        assert response.status_code in (200, 400), name
        assert_accessible(response.data, name)

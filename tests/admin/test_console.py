"""The admin console (/admin): administrators only, with a recent password; clients,
users and the audit trail; every change is an admin.* audit event."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from idp.persistence.models import AuditEvent, Client, Grant, SsoSession, User
from idp.security.audit import record_event
from tests.conftest import basic_auth
from tests.oidc.test_code_flow import exchange
from tests.support import PASSWORD, csrf_token, form_with, forms, query_of

SECRET_RE = re.compile(r"<dt>client_secret</dt><dd><code>([A-Za-z0-9_-]{40,})</code>")
CLIENT_ID_RE = re.compile(r"<dt>client_id</dt><dd><code>([^<]+)</code>")


@pytest.fixture
def terms(svc):
    return svc.settings.registration.terms_version


@pytest.fixture
def admin(user_factory, terms):
    return user_factory(email="admin@region.example", is_admin=True, terms_version=terms)


@pytest.fixture
def citizen(user_factory, terms):
    return user_factory(email="marie.dupont@example.org", terms_version=terms)


@pytest.fixture
def console(browser, admin):
    """The browser of an administrator who has just typed the password."""
    assert browser.login(admin.email).status_code == 302
    return browser


def events(app, svc, type_=None):
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.created_at)
        if type_:
            query = query.where(AuditEvent.type == type_)
        found = list(svc.db.session.scalars(query))
        svc.db.session.expunge_all()
        return found


def load(app, svc, model, key):
    with app.app_context():
        obj = svc.db.session.get(model, key)
        if obj is not None:
            svc.db.session.expunge(obj)
        return obj


def form_to(response, action_end: str) -> dict:
    (form,) = [f for f in forms(response.data) if f["action"].endswith(action_end)]
    return form


def post_form(browser, url, field, values=None, button=None):
    page = browser.get(url)
    assert page.status_code == 200, (url, page.status_code)
    return browser.submit(page, field, values, button)


def test_anonymous_visitors_are_sent_to_login(browser):
    for url in ("/admin/", "/admin/clients", "/admin/usagers", "/admin/journal"):
        response = browser.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


def test_non_admins_get_403_everywhere(browser, citizen, rp):
    browser.login(citizen.email)
    token = csrf_token(browser.get("/compte/").data)
    for url in ("/admin/", "/admin/clients", "/admin/clients/nouveau", "/admin/usagers",
                "/admin/journal", f"/admin/clients/{rp.client_id}",
                f"/admin/usagers/{citizen.id}"):
        assert browser.get(url).status_code == 403, url
    for url in (f"/admin/clients/{rp.client_id}/suppression",
                f"/admin/clients/{rp.client_id}/secret",
                f"/admin/usagers/{citizen.id}/desactivation", "/admin/clients/nouveau"):
        assert browser.post(url, data={"csrf_token": token}).status_code == 403, url
    assert load(browser.client.application, browser.client.application.extensions["idp"],
                Client, rp.client_id) is not None


def test_the_console_needs_a_password_typed_within_10_minutes(app, svc, console, admin):
    assert console.get("/admin/").status_code == 200
    with app.app_context():
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=11)
        svc.db.session.execute(update(SsoSession).where(SsoSession.user_id == admin.id)
                               .values(auth_time=old, reauthenticated_at=old))
        svc.db.session.commit()
    response = console.get("/admin/usagers?q=dupont")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/reauth")
    page = console.get(response.headers["Location"])
    wrong = console.submit(page, "password", {"password": "pas le bon"})
    assert wrong.status_code == 400
    done = console.submit(page, "password", {"password": PASSWORD})
    assert done.status_code == 302 and done.headers["Location"] == "/admin/usagers?q=dupont"
    assert console.get("/admin/usagers?q=dupont").status_code == 200


def test_create_a_client_shows_the_secret_once_and_it_works(app, svc, console, admin):
    page = console.get("/admin/clients/nouveau")
    assert 'name="csrf_token"' in page.get_data(as_text=True)
    created = console.submit(page, "name", {
        "name": "Cantine scolaire", "redirect_uris": "https://cantine.example/cb\n\n"
        "https://cantine.example/cb2", "post_logout_redirect_uris": "https://cantine.example/",
        "home_url": "https://cantine.example/", "auth_method": "client_secret_basic"})
    assert created.status_code == 200
    html = created.get_data(as_text=True)
    secret = SECRET_RE.search(html).group(1)
    client_id = CLIENT_ID_RE.search(html).group(1)
    assert "plus jamais affiché" in html
    client = load(app, svc, Client, client_id)
    assert client.name == "Cantine scolaire"
    assert client.redirect_uris == ["https://cantine.example/cb", "https://cantine.example/cb2"]
    assert client.post_logout_redirect_uris == ["https://cantine.example/"]
    assert client.require_consent and client.listed
    assert secret not in (client.client_secret_hash or "")
    # The secret authenticates the client at the token endpoint.
    auth = basic_auth(type("C", (), {"client_id": client_id, "client_secret": secret}))
    assert console.post("/token", headers=auth, data={
        "grant_type": "client_credentials"}).json["error"] == "unauthorized_client"
    # Never shown again.
    assert secret not in console.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert secret not in console.get("/admin/clients").get_data(as_text=True)
    (event,) = events(app, svc, "admin.client_created")
    assert event.client_id == client_id and event.details["admin_id"] == admin.id
    assert secret not in str(event.details)


def test_a_public_client_has_no_secret(app, svc, console):
    created = post_form(console, "/admin/clients/nouveau", "name", {
        "name": "Appli mobile", "redirect_uris": "http://localhost:8080/cb",
        "auth_method": "none"})
    html = created.get_data(as_text=True)
    assert created.status_code == 200 and not SECRET_RE.search(html)
    client = load(app, svc, Client, CLIENT_ID_RE.search(html).group(1))
    assert client.token_endpoint_auth_method == "none" and client.client_secret_hash is None


@pytest.mark.parametrize("values, message", [
    ({"name": "", "redirect_uris": "https://a.example/cb"}, "Indiquez le nom"),
    ({"name": "A", "redirect_uris": ""}, "au moins une adresse"),
    ({"name": "A", "redirect_uris": "http://a.example/cb"}, "Adresse refusée"),
    ({"name": "A", "redirect_uris": "https://a.example/cb#x"}, "Adresse refusée"),
    ({"name": "A", "redirect_uris": "javascript:alert(1)"}, "Adresse refusée"),
    ({"name": "A", "redirect_uris": "https://a.example/cb", "home_url": "ftp://x"},
     "adresse complète"),
    ({"name": "A", "redirect_uris": "https://a.example/cb",
      "home_url": "http://a.example/"}, "http n'est admis que pour localhost"),
    ({"name": "A", "redirect_uris": "https://a.example/cb",
      "home_url": "https://u:p@a.example/"}, "adresse complète"),
    ({"name": "A" * 201, "redirect_uris": "https://a.example/cb"}, "200 caractères"),
    ({"name": "A", "redirect_uris": "https://a.example/cb", "auth_method": "magic"},
     "Authentification"),
])
def test_bad_client_input_rerenders_the_form_in_french(app, svc, console, values, message):
    response = post_form(console, "/admin/clients/nouveau", "name", values)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'role="alert"' in html
    with app.app_context():
        assert svc.db.session.scalar(select(Client)) is None


def test_edit_a_client(app, svc, console, client_factory, admin):
    rp = client_factory(name="Bourse", require_consent=True)
    page = console.get(f"/admin/clients/{rp.client_id}")
    assert rp.redirect_uri in page.get_data(as_text=True)
    form = form_with(page.data, "name")
    data = {**form["fields"], "name": "Bourse aux livres",
            "redirect_uris": "https://bourse.example/cb", "home_url": "https://bourse.example/",
            "post_logout_redirect_uris": "https://bourse.example/bye"}
    data.pop("require_consent", None)  # unticked
    data.pop("listed", None)
    done = console.post(form["action"], data=data)
    assert done.status_code == 302
    client = load(app, svc, Client, rp.client_id)
    assert client.name == "Bourse aux livres"
    assert client.redirect_uris == ["https://bourse.example/cb"]
    assert client.post_logout_redirect_uris == ["https://bourse.example/bye"]
    assert client.home_url == "https://bourse.example/"
    assert not client.require_consent and not client.listed
    (event,) = events(app, svc, "admin.client_updated")
    assert event.details["fields"] == ["home_url", "listed", "name", "post_logout_redirect_uris",
                                       "redirect_uris", "require_consent"]
    assert event.details["admin_id"] == admin.id
    assert "enregistrées" in console.get(done.headers["Location"]).get_data(as_text=True)
    # A bad redirect URI is refused, nothing changes.
    bad = console.post(form["action"], data={**data, "redirect_uris": "http://bourse.example/cb"})
    assert bad.status_code == 400
    assert load(app, svc, Client, rp.client_id).redirect_uris == ["https://bourse.example/cb"]


def test_rotate_a_client_secret(app, svc, console, rp, user_factory):
    page = console.get(f"/admin/clients/{rp.client_id}")
    form = form_to(page, "/secret")
    rotated = console.post(form["action"], data=form["fields"])
    assert rotated.status_code == 200
    secret = SECRET_RE.search(rotated.get_data(as_text=True)).group(1)
    assert secret != rp.client_secret
    old = console.post("/token", headers=basic_auth(rp), data={"grant_type": "refresh_token",
                                                                "refresh_token": "x"})
    assert old.status_code == 401
    new = type(rp)(rp.client_id, secret, rp.redirect_uri)
    assert console.post("/token", headers=basic_auth(new), data={
        "grant_type": "refresh_token", "refresh_token": "x"}).json["error"] == "invalid_grant"
    assert len(events(app, svc, "admin.client_secret_rotated")) == 1
    # Without the CSRF token: refused.
    assert console.post(f"/admin/clients/{rp.client_id}/secret").status_code == 400


def test_delete_a_client_after_confirmation(app, svc, console, rp):
    confirm = console.get(f"/admin/clients/{rp.client_id}/suppression")
    assert confirm.status_code == 200 and "définitive" in confirm.get_data(as_text=True)
    assert load(app, svc, Client, rp.client_id) is not None  # GET changes nothing
    form = form_to(confirm, "/suppression")
    done = console.post(form["action"], data=form["fields"])
    assert done.status_code == 302 and done.headers["Location"] == "/admin/clients"
    assert load(app, svc, Client, rp.client_id) is None
    assert events(app, svc, "admin.client_deleted")[0].client_id == rp.client_id
    assert console.get(f"/admin/clients/{rp.client_id}").status_code == 404


def test_search_clients(console, client_factory):
    client_factory(name="Cantine scolaire")
    client_factory(name="Transport scolaire")
    client_factory(name="Bourse 100%")
    html = console.get("/admin/clients?q=SCOLAIRE").get_data(as_text=True)
    assert "Cantine scolaire" in html and "Transport scolaire" in html and "Bourse" not in html
    html = console.get("/admin/clients?q=%25").get_data(as_text=True)
    assert "Bourse 100%" in html and "Cantine" not in html
    assert "Aucune application" in console.get("/admin/clients?q=zzz").get_data(as_text=True)


def test_list_and_search_users_without_password_hashes(app, svc, console, citizen, user_factory):
    user_factory(email="jean.martin@example.org")
    html = console.get("/admin/usagers").get_data(as_text=True)
    assert citizen.email in html and "jean.martin@example.org" in html
    html = console.get("/admin/usagers?q=Dupont").get_data(as_text=True)
    assert citizen.email in html and "jean.martin" not in html
    detail = console.get(f"/admin/usagers/{citizen.id}").get_data(as_text=True)
    user = load(app, svc, User, citizen.id)
    for page in (html, detail):
        assert "argon2" not in page and user.password_hash not in page
    assert console.get("/admin/usagers/inconnu").status_code == 404


def test_disable_a_user_ends_sessions_and_grants_then_enable(app, svc, console, admin, citizen,
                                                             new_browser, rp):
    # The citizen is signed in and gave a démarche an offline grant.
    theirs = new_browser()
    response, verifier, _ = theirs.authorize(rp, scope="openid offline_access")
    location = theirs.follow_to_client(response, email=citizen.email)
    tokens = exchange(theirs, rp, query_of(location)["code"], verifier).json
    assert theirs.get("/compte/").status_code == 200

    page = console.get(f"/admin/usagers/{citizen.id}")
    form = form_to(page, "/desactivation")
    done = console.post(form["action"], data=form["fields"])
    assert done.status_code == 302
    assert load(app, svc, User, citizen.id).disabled
    assert theirs.get("/compte/").status_code == 302
    refresh = theirs.post("/token", headers=basic_auth(rp), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.json["error"] == "invalid_grant"
    with app.app_context():
        assert all(s.ended_at for s in svc.db.session.scalars(
            select(SsoSession).where(SsoSession.user_id == citizen.id)))
        assert all(g.revoked_at for g in svc.db.session.scalars(
            select(Grant).where(Grant.user_id == citizen.id)))
    assert new_browser().login(citizen.email).status_code == 400
    (event,) = events(app, svc, "admin.user_disabled")
    assert event.user_id == citizen.id and event.details["admin_id"] == admin.id
    assert event.details["sessions_ended"] == 1 and event.details["grants_revoked"] == 1

    page = console.get(f"/admin/usagers/{citizen.id}")
    form = form_to(page, "/activation")
    assert console.post(form["action"], data=form["fields"]).status_code == 302
    assert not load(app, svc, User, citizen.id).disabled
    assert new_browser().login(citizen.email).status_code == 302
    assert events(app, svc, "admin.user_enabled")[0].user_id == citizen.id


def test_an_admin_cannot_disable_their_own_account(app, svc, console, admin):
    token = csrf_token(console.get(f"/admin/usagers/{admin.id}").data)
    done = console.post(f"/admin/usagers/{admin.id}/desactivation", data={"csrf_token": token})
    assert done.status_code == 302
    assert not load(app, svc, User, admin.id).disabled
    assert console.get("/admin/").status_code == 200


def test_audit_trail_with_filters(app, svc, console, citizen, rp):
    now = dt.datetime.now(dt.timezone.utc)
    with app.app_context():
        db = svc.db.session
        for type_, days, user_id, client_id in [
                ("login.success", 40, citizen.id, None), ("token.issued", 3, citizen.id, rp.client_id),
                ("login.failure", 1, None, None), ("consent.given", 0, citizen.id, rp.client_id)]:
            event = record_event(db, type_, user_id=user_id, client_id=client_id,
                                 details={"marker": type_})
            event.created_at = now - dt.timedelta(days=days)
        db.commit()

    def shown(query=""):
        response = console.get("/admin/journal" + query)
        assert response.status_code == 200, response.status_code
        html = response.get_data(as_text=True)
        return {t for t in ("login.success", "token.issued", "login.failure", "consent.given")
                if f'"marker": "{t}"' in html.replace("&#34;", '"')}

    assert shown() == {"login.success", "token.issued", "login.failure", "consent.given"}
    assert shown("?type=login") == {"login.success", "login.failure"}
    assert shown(f"?user={citizen.id}") == {"login.success", "token.issued", "consent.given"}
    assert shown("?user=Marie.Dupont%40example.org") == {"login.success", "token.issued",
                                                           "consent.given"}
    assert shown("?user=inconnu%40example.org") == set()
    assert shown(f"?client={rp.client_id}") == {"token.issued", "consent.given"}
    start = (now - dt.timedelta(days=5)).date().isoformat()
    end = (now - dt.timedelta(days=1)).date().isoformat()
    assert shown(f"?start={start}&end={end}") == {"token.issued", "login.failure"}
    assert shown(f"?type=token&client={rp.client_id}&user={citizen.id}") == {"token.issued"}
    # Bad filters re-render the form with a French message, never a 500.
    for query in ("?start=hier", f"?start={end}&end={start}", "?type=" + "x" * 100):
        response = console.get("/admin/journal" + query)
        assert response.status_code == 400
        assert 'role="alert"' in response.get_data(as_text=True)


def test_admin_actions_are_attributed_in_the_trail(app, svc, console, admin, rp):
    console.post(f"/admin/clients/{rp.client_id}/secret",
                 data={"csrf_token": csrf_token(console.get("/admin/").data)})
    html = console.get("/admin/journal?type=admin.").get_data(as_text=True)
    assert "admin.client_secret_rotated" in html and admin.id in html

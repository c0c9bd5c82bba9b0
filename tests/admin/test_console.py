"""The admin console (/admin): administrators only, signed in with a second factor and
a recent password; clients, users and the audit trail; every change is an admin.* audit
event."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from idp.persistence.models import AuditEvent, Client, SsoSession, User
from idp.security.audit import record_event
from tests.conftest import basic_auth
from tests.support import PASSWORD, csrf_token, form_with, forms, query_of, unused_totp_code

SECRET_RE = re.compile(r"<dt>client_secret</dt><dd><code>([A-Za-z0-9_-]{40,})</code>")
CLIENT_ID_RE = re.compile(r"<dt>client_id</dt><dd><code>([^<]+)</code>")


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


def admin_requests(app, rp, user) -> list[tuple[str, str]]:
    """(method, url) of every console route, its parameters filled in."""
    token_id = "00000000-0000-0000-0000-000000000000"
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        url = rule.rule.replace("<client_id>", rp.client_id).replace(
            "<user_id>", user.id).replace("<token_id>", token_id)
        for method in sorted(rule.methods & {"GET", "POST"}):
            found.append((method, url))
    assert len(found) >= 20
    return found


def test_non_admins_get_403_everywhere(app, browser, citizen, rp):
    browser.login(citizen.email)
    token = csrf_token(browser.get("/compte/").data)
    for method, url in admin_requests(app, rp, citizen):
        if method == "GET":
            assert browser.get(url).status_code == 403, url
        else:
            assert browser.post(url, data={"csrf_token": token, "reason": "x", "label": "x",
                                           "days": "1"}).status_code == 403, url
    assert load(app, app.extensions["idp"], Client, rp.client_id) is not None
    assert not load(app, app.extensions["idp"], User, citizen.id).disabled


def test_an_admin_without_second_factor_is_sent_to_use_it(app, svc, browser, admin, citizen,
                                                         rp, admin_totp):
    """A session established with the password alone (before the rule, or by a flow that
    skipped the second factor) gets nothing from the console: it is sent to sign in again
    with the second factor, with a French message, and comes back where it was going."""
    with app.app_context():
        from idp.identity import sso as sso_service
        db = svc.db.session
        sso = sso_service.start(db, db.get(User, admin.id), amr=["pwd"], acr="eidas1",
                                lifetime=3600, ip_address=None, user_agent=None)
        db.commit()
        sso_id = sso.id
    # The browser carries that password-only session.
    with browser.client.session_transaction() as session:
        session["_user_id"] = sso_id
        session["_fresh"] = True
    token = csrf_token(browser.get("/compte/").data)
    for method, url in admin_requests(app, rp, citizen):
        response = browser.get(url) if method == "GET" else browser.post(
            url, data={"csrf_token": token, "reason": "x", "label": "x", "days": "1"})
        assert response.status_code == 302, (method, url)
        location = response.headers["Location"]
        assert location.startswith("/login?") and "acr=eidas2" in location, location
        back = query_of(location)["return_to"]
        assert back == (url if method == "GET" else "/admin/"), (method, url, back)
    assert not load(app, svc, User, citizen.id).disabled
    page = browser.get(browser.get("/admin/usagers").headers["Location"])
    html = page.get_data(as_text=True)
    assert "double authentification" in html
    # The password, then the code: back in the console, now with a second factor.
    done = browser.submit(page, "email", {"email": admin.email, "password": PASSWORD})
    assert done.headers["Location"].startswith("/login/mfa")
    code_page = browser.get(done.headers["Location"])
    back = browser.submit(code_page, "code",
                          {"code": unused_totp_code(app, svc, admin.id, admin_totp)})
    assert back.status_code == 302 and back.headers["Location"] == "/admin/usagers"
    assert browser.get("/admin/usagers").status_code == 200


def test_an_admin_signs_in_with_a_second_factor(app, svc, browser, admin, admin_totp):
    """The password alone never signs an administrator in."""
    response = browser.login(admin.email)
    assert response.headers["Location"].startswith("/login/mfa")
    assert browser.get("/admin/").status_code == 302
    assert browser.get("/compte/").status_code == 302  # not signed in yet


def test_an_admin_without_authenticator_sets_one_up_at_sign_in(app, svc, browser, admin):
    response = browser.login(admin.email)
    page = browser.get(response.headers["Location"])
    while page.status_code == 302:
        page = browser.get(page.headers["Location"])
    assert "/login/mfa/activer" in page.request.path or "cle-totp" in page.get_data(as_text=True)


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

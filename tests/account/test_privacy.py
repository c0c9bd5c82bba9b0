"""Confidentialité: sessions, security events, export, account deletion."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import json

from sqlalchemy import select

from idp.persistence.models import AuditEvent, Consumable, Grant, SsoSession, User
from tests.account.conftest import age_sessions, load_user, sessions_of, text
from tests.account.oidc_helpers import refresh, sign_in_to, userinfo
from tests.account.test_relations import add_organisation, add_person
from tests.support import csrf_token, forms

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def post_form(browser, page, suffix):
    action = next(f["action"] for f in forms(page.data) if f["action"].endswith(suffix))
    return browser.post(action, data={"csrf_token": csrf_token(page.data)})


def test_sessions_listed_and_ended_one_by_one(logged_in, new_browser, user, svc):
    other = new_browser()
    other.client.environ_base["HTTP_USER_AGENT"] = FIREFOX
    other.login(user.email)
    page = logged_in.get("/compte/confidentialite")
    html = text(page)
    assert "Firefox sur Windows" in html and "cet appareil" in html
    for session in sessions_of(svc, user.id):
        assert session.id not in html  # pages show a handle, never the session id
    actions = [f["action"] for f in forms(page.data) if f["action"].endswith("/fermer")]
    assert len(actions) == 2
    # the session that is not this one
    current_first = html.index("cet appareil") < html.index("Firefox sur Windows")
    target = actions[1] if current_first else actions[0]
    response = logged_in.post(target, data={"csrf_token": csrf_token(page.data)})
    assert response.status_code == 302
    assert other.get("/compte/").status_code == 302
    assert logged_in.get("/compte/").status_code == 200
    with svc.db.transaction() as db:
        assert db.scalar(select(AuditEvent).where(AuditEvent.type == "session.revoked"))


def test_sign_out_everywhere_else(logged_in, new_browser, user, svc):
    others = [new_browser(), new_browser()]
    for browser in others:
        browser.login(user.email)
    page = logged_in.get("/compte/confidentialite")
    assert post_form(logged_in, page, "/fermer-les-autres").status_code == 302
    assert all(b.get("/compte/").status_code == 302 for b in others)
    assert logged_in.get("/compte/").status_code == 200
    assert len([s for s in sessions_of(svc, user.id) if s.ended_at is None]) == 1


def test_sign_out_this_device(logged_in, user):
    page = logged_in.get("/compte/confidentialite")
    response = post_form(logged_in, page, "/fermer")
    assert response.status_code == 302
    assert logged_in.get("/compte/").status_code == 302


def test_security_events_in_plain_french_newest_first(logged_in, user):
    page = logged_in.get("/compte/profil")
    logged_in.submit(page, "given_name", {"given_name": "Marie-Claire"})
    html = text(logged_in.get("/compte/confidentialite"))
    assert "Profil modifié" in html and "Connexion" in html
    assert html.index("Profil modifié") < html.index("<p class=\"item-title\">Connexion")


def test_export_contains_everything_but_secrets(logged_in, user, svc, client_factory):
    add_person(logged_in)
    add_organisation(logged_in)
    client = client_factory(name="Démarche export", require_consent=True)
    sign_in_to(logged_in, client, user, "openid profile offline_access")
    response = logged_in.get("/compte/confidentialite/export")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    data = json.loads(response.data)
    assert data["profile"]["email"] == user.email
    assert {r["type"] for r in data["relations"]} == {"person", "organisation"}
    assert data["consents"][0]["application"] == "Démarche export"
    # The export tells the same last use as the Applications page, never null for an
    # application in use.
    last_used = data["consents"][0]["last_used_at"]
    assert last_used is not None
    grants = [a for a in data["authorizations"] if a["client_id"] == client.client_id]
    assert last_used == max([data["consents"][0]["granted_at"]] + [g["created_at"] for g in grants])
    applications = logged_in.get("/compte/applications").get_data(as_text=True)
    shown = dt.datetime.fromisoformat(last_used).astimezone(ZoneInfo(svc.settings.display_timezone))
    assert f"{shown:%d/%m/%Y}" in applications and f"{shown:%H:%M}" in applications
    assert data["sessions"] and data["security_events"]
    raw = response.data.decode()
    saved = load_user(svc, user.id)
    assert "password_hash" not in raw and saved.password_hash not in raw
    assert "argon2" not in raw
    for session in sessions_of(svc, user.id):
        assert session.id not in raw
    with svc.db.transaction() as db:
        for item in db.scalars(select(Consumable)):
            assert item.lookup not in raw
            assert not item.secret_hash or item.secret_hash not in raw


def test_export_needs_recent_authentication(logged_in, user, svc):
    age_sessions(svc, user.id)
    response = logged_in.get("/compte/confidentialite/export")
    assert response.status_code == 302 and "/login/reauth" in response.headers["Location"]


def test_delete_needs_the_checkbox(logged_in, user, svc):
    page = logged_in.get("/compte/supprimer")
    response = logged_in.post("/compte/supprimer", data={"csrf_token": csrf_token(page.data)})
    assert response.status_code == 400
    assert "Cochez la case" in text(response) and 'href="#confirm"' in text(response)
    assert load_user(svc, user.id) is not None


def test_delete_needs_recent_authentication(logged_in, user, svc):
    age_sessions(svc, user.id)
    response = logged_in.get("/compte/supprimer")
    assert response.status_code == 302 and "/login/reauth" in response.headers["Location"]
    assert load_user(svc, user.id) is not None


def test_delete_account_removes_everything(logged_in, new_browser, user, svc, client_factory,
                                           outbox, app):
    add_person(logged_in)
    client = client_factory(name="Démarche", require_consent=True,
                            scopes=["openid", "profile", "offline_access"])
    tokens = sign_in_to(logged_in, client, user, "openid profile offline_access")
    other = new_browser()
    other.login(user.email)
    page = logged_in.get("/compte/supprimer")
    response = logged_in.post("/compte/supprimer", data={"csrf_token": csrf_token(page.data),
                                                         "confirm": "y"})
    assert response.status_code == 200 and "a été supprimé" in text(response)
    assert load_user(svc, user.id) is None
    with svc.db.transaction() as db:
        for model in (SsoSession, Grant, Consumable):
            assert db.scalar(select(model).where(model.user_id == user.id)) is None
        assert db.scalar(select(User).where(User.email == user.email)) is None
        event = db.scalar(select(AuditEvent).where(AuditEvent.type == "account.deleted"))
        assert event.user_id == user.id
    assert refresh(logged_in, client, tokens["refresh_token"]).status_code == 400
    assert userinfo(logged_in, tokens["access_token"]).status_code == 401
    assert logged_in.get("/compte/").status_code == 302
    assert other.get("/compte/").status_code == 302
    assert "supprimé" in outbox.last(user.email)["subject"]
    assert new_browser().login(user.email).status_code != 302


def test_every_audited_event_type_has_a_french_label():
    """Confidentialité lists the account's events: none may show a technical name."""
    import re
    from pathlib import Path

    from idp.account.privacy import EVENT_LABELS

    root = Path(__file__).resolve().parents[2] / "idp"
    source = "\n".join(p.read_text(encoding="utf-8") for p in root.rglob("*.py"))
    types = set(re.findall(r'\baudit\(\s*"([a-z_.]+)"', source))
    types |= set(re.findall(r'record_event\(\s*\w+,\s*"([a-z_.]+)"', source))
    types |= {f"token.{reason}" for reason in
              re.findall(r'consume_or_revoke_family\([^)]*"([a-z_]+)"\)', source)}
    assert len(types) > 40
    assert sorted(types - set(EVENT_LABELS)) == []

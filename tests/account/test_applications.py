"""Applications: the apps used, what they read, withdrawing access; the catalogue."""

from __future__ import annotations

from sqlalchemy import select

from idp.persistence.models import AuditEvent, Consent, Grant
from tests.account.conftest import text
from tests.account.oidc_helpers import refresh, sign_in_to, userinfo
from tests.support import csrf_token, forms


def test_used_app_listed_with_scopes_and_revoked(logged_in, user, client_factory, svc, app):
    client = client_factory(name="Aide aux transports", home_url="https://transports.example.org",
                            require_consent=True)
    tokens = sign_in_to(logged_in, client, user, "openid profile email offline_access")
    page = logged_in.get("/compte/applications")
    html = text(page)
    assert "Aide aux transports" in html
    assert "Votre identité\u00a0: nom, prénom, date de naissance" in html
    assert "Votre adresse e-mail" in html
    assert "Votre adresse postale" not in html
    action = next(f["action"] for f in forms(page.data) if f["action"].endswith("/retirer"))
    response = logged_in.post(action, data={"csrf_token": csrf_token(page.data)})
    assert response.status_code == 302
    assert "n'a plus accès" in text(logged_in.get("/compte/applications"))
    with app.app_context():
        db = svc.db.session
        assert db.scalar(select(Consent).where(Consent.user_id == user.id)) is None
        grants = list(db.scalars(select(Grant).where(Grant.user_id == user.id)))
        assert grants and all(g.revoked_reason == "revoked_by_user" for g in grants)
        event = db.scalar(select(AuditEvent).where(AuditEvent.type == "consent.revoked"))
        assert event.client_id == client.client_id and event.user_id == user.id
    assert userinfo(logged_in, tokens["access_token"]).status_code == 401
    assert refresh(logged_in, client, tokens["refresh_token"]).status_code == 400
    page = logged_in.get("/compte/applications")
    assert "Vous n'avez encore utilisé aucune démarche" in text(page)


def test_catalogue_lists_listed_apps_with_home_url(logged_in, client_factory):
    client_factory(name="Bourses scolaires", home_url="https://bourses.example.org",
                   description="Demander une bourse")
    client_factory(name="Application interne")  # no home_url: not in the catalogue
    suspended = client_factory(name="Transport suspendu", home_url="https://t.example.org")
    with logged_in.client.application.app_context():
        from idp.persistence.models import Client
        svc = logged_in.client.application.extensions["idp"]
        svc.db.session.get(Client, suspended.client_id).disabled = True  # by an admin
        svc.db.session.commit()
    html = text(logged_in.get("/compte/applications"))
    assert '<a href="https://bourses.example.org">Bourses scolaires</a>' in html
    assert "Demander une bourse" in html
    assert "Application interne" not in html and "Transport suspendu" not in html


def test_revoking_an_unknown_app_is_404(logged_in):
    page = logged_in.get("/compte/applications")
    response = logged_in.post("/compte/applications/inconnue/retirer",
                              data={"csrf_token": csrf_token(page.data)})
    assert response.status_code == 404

"""Profil: the summary page, the edition of identity and address."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

from sqlalchemy import select

from idp.persistence.models import AuditEvent
from tests.account.conftest import load_user, text
from tests.support import forms


class _Fields(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.labels = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("input", "select", "textarea") and attrs.get("type") not in (
                "hidden", "submit", "button"):
            self.ids.append(attrs.get("id"))
        elif tag == "label" and attrs.get("for"):
            self.labels.add(attrs["for"])


def unlabelled_fields(html: str) -> list:
    parser = _Fields()
    parser.feed(html)
    return [i for i in parser.ids if i is None or i not in parser.labels]

SECTIONS = ["/compte/", "/compte/profil", "/compte/securite", "/compte/preferences",
            "/compte/relations", "/compte/applications", "/compte/confidentialite",
            "/compte/contact/telephone", "/compte/contact/courriel",
            "/compte/relations/personne/ajouter", "/compte/relations/organisme/ajouter",
            "/compte/securite/mot-de-passe", "/compte/securite/identifiant",
            "/compte/supprimer"]


def test_pages_need_login(browser):
    response = browser.get("/compte/profil")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_every_page_is_no_store_with_nav_and_labels(logged_in):
    for url in SECTIONS:
        response = logged_in.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
        html = text(response)
        assert 'aria-label="Rubriques de mon compte"' in html
        assert 'aria-current="page"' in html
        assert 'name="viewport"' in html
        unlabelled = unlabelled_fields(html)
        assert not unlabelled, (url, unlabelled)
        for form in forms(html):
            if form["method"].lower() == "post":
                assert "csrf_token" in form["fields"], (url, form["action"])


def test_index_shows_profile(logged_in, user):
    html = logged_in.get("/compte/").data.decode()
    assert user.email in html and "Dupont" in html and "Marie" in html
    assert "Ajouter" in html  # no phone yet


def test_edit_profile_saves_and_audits(logged_in, user, svc, app):
    page = logged_in.get("/compte/profil")
    response = logged_in.submit(page, "given_name", {
        "given_name": "Marie-Claire", "family_name": "Dupont", "birthdate": "14/07/1990",
        "street_address": "1 rue de la Paix", "postal_code": "98800", "locality": "Nouméa",
        "country": "Nouvelle-Calédonie"})
    assert response.status_code == 302
    saved = load_user(svc, user.id)
    assert saved.given_name == "Marie-Claire"
    assert saved.birthdate == dt.date(1990, 7, 14)
    assert saved.locality == "Nouméa" and saved.postal_code == "98800"
    with app.app_context():
        event = svc.db.session.scalar(select(AuditEvent).where(
            AuditEvent.type == "profile.updated"))
        assert event.user_id == user.id and "given_name" in event.details["fields"]
    assert "Votre profil a été enregistré" in logged_in.get("/compte/").data.decode()


def test_edit_profile_bad_input_keeps_what_was_typed(logged_in, user, svc):
    page = logged_in.get("/compte/profil")
    response = logged_in.submit(page, "given_name", {
        "given_name": "", "birthdate": "31/02/1990", "locality": "Bourail"})
    assert response.status_code == 400
    html = text(response)
    assert "Saisissez votre prénom." in html
    assert "Saisissez une date valide" in html
    assert 'href="#birthdate"' in html and 'aria-invalid="true"' in html
    assert 'value="31/02/1990"' in html and 'value="Bourail"' in html
    saved = load_user(svc, user.id)
    assert saved.given_name == "Marie" and saved.locality is None


def test_future_birthdate_refused(logged_in):
    page = logged_in.get("/compte/profil")
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    response = logged_in.submit(page, "given_name", {"birthdate": future})
    assert response.status_code == 400 and "dans le futur" in text(response)


def test_profile_prefills_standard_claims(logged_in, user, svc, app):
    from idp.oidc.claims import user_claims

    page = logged_in.get("/compte/profil")
    logged_in.submit(page, "given_name", {"birthdate": "1990-07-14", "locality": "Nouméa"})
    with app.app_context():
        from idp.persistence.models import User

        claims = user_claims(svc.db.session.get(User, user.id), {"birthdate", "address"},
                             svc.db.session)
    assert claims["birthdate"] == "1990-07-14" and claims["address"]["locality"] == "Nouméa"

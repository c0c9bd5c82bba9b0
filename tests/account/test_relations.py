"""Mes relations: CRUD, SIRET/RIDET checks, and the ``relations`` claim."""

from __future__ import annotations

import json

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.account.identifiers import (IdentifierError, luhn_valid, normalize_ridet,
                                     normalize_siret)
from idp.persistence.models import AuditEvent
from idp.persistence.models.relations import Relation
from tests.account.conftest import text
from tests.account.oidc_helpers import refresh, sign_in_to, userinfo
from tests.conftest import basic_auth
from tests.support import csrf_token, forms, query_of

SIRET = "732 829 320 00074"  # valid Luhn key
ALL_SCOPES = ["openid", "profile", "email", "phone", "address", "offline_access", "relations"]


def svc_keys(browser) -> KeySet:
    return KeySet.import_key_set(browser.get("/jwks.json").json)


def relations_of(svc, user_id):
    with svc.db.transaction() as session:
        rows = list(session.scalars(select(Relation).where(Relation.user_id == user_id)))
        session.expunge_all()
        return rows


def add_person(browser, **values):
    page = browser.get("/compte/relations/personne/ajouter")
    data = {"relationship": "child", "given_name": "Léa", "family_name": "Dupont",
            "birthdate": "12/03/2015", **values}
    return browser.submit(page, "given_name", data)


def add_organisation(browser, **values):
    page = browser.get("/compte/relations/organisme/ajouter")
    data = {"organisation_name": "Association des parents", "identifier_type": "siret",
            "identifier": SIRET, "role": "Trésorière", **values}
    return browser.submit(page, "organisation_name", data)


# -- identifiers --------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["73282932000074", "732 829 320 00074", "732.829.320.00074"])
def test_valid_siret(raw):
    assert normalize_siret(raw) == "73282932000074"


@pytest.mark.parametrize("raw", ["73282932000075", "7328293200007", "abcdefghijklmn", ""])
def test_invalid_siret(raw):
    with pytest.raises(IdentifierError):
        normalize_siret(raw)


def test_la_poste_siret_exception():
    assert normalize_siret("35600000049837") == "35600000049837"
    assert not luhn_valid("35600000049837")


@pytest.mark.parametrize("raw", ["1234567.001", "1234567 001", "1 234 567.001", "1234567001"])
def test_valid_ridet(raw):
    assert normalize_ridet(raw) == "1234567.001"


@pytest.mark.parametrize("raw", ["123456.001", "1234567.01", "1234567.0011", "ABCDEFG.001"])
def test_invalid_ridet(raw):
    with pytest.raises(IdentifierError):
        normalize_ridet(raw)


# -- pages --------------------------------------------------------------------------
def test_add_edit_delete_person(logged_in, user, svc, app):
    response = add_person(logged_in)
    assert response.status_code == 302
    (relation,) = relations_of(svc, user.id)
    assert relation.kind == "person" and relation.given_name == "Léa"
    assert relation.birthdate.isoformat() == "2015-03-12"
    page = logged_in.get("/compte/relations")
    assert "Léa Dupont" in text(page) and "Enfant" in text(page)
    edit = logged_in.get(f"/compte/relations/{relation.id}/modifier")
    assert 'value="2015-03-12"' in text(edit)
    response = logged_in.submit(edit, "given_name", {"relationship": "child",
                                                      "given_name": "Léana"})
    assert response.status_code == 302
    assert relations_of(svc, user.id)[0].given_name == "Léana"
    page = logged_in.get("/compte/relations")
    action = next(f["action"] for f in forms(page.data) if f["action"].endswith("/supprimer"))
    assert logged_in.post(action, data={"csrf_token": csrf_token(page.data)}).status_code == 302
    assert relations_of(svc, user.id) == []
    with app.app_context():
        types = list(svc.db.session.scalars(select(AuditEvent.type).where(
            AuditEvent.type.like("relation.%")).order_by(AuditEvent.created_at)))
    assert types == ["relation.created", "relation.updated", "relation.deleted"]


def test_person_needs_names_and_a_real_date(logged_in, user, svc):
    response = add_person(logged_in, given_name="", birthdate="32/13/2015")
    assert response.status_code == 400
    html = text(response)
    assert "Saisissez le prénom." in html and "Saisissez une date valide" in html
    assert 'value="32/13/2015"' in html and 'value="Dupont"' in html
    response = add_person(logged_in, relationship="cousin")
    assert response.status_code == 400 and "Choisissez une des options" in text(response)
    assert relations_of(svc, user.id) == []


def test_add_organisation_siret_and_ridet(logged_in, user, svc):
    assert add_organisation(logged_in).status_code == 302
    assert add_organisation(logged_in, organisation_name="Entreprise calédonienne",
                            identifier_type="ridet", identifier="0123456 002",
                            role="Gérant").status_code == 302
    items = {r.organisation_name: r for r in relations_of(svc, user.id)}
    assert items["Association des parents"].identifier == "73282932000074"
    assert items["Entreprise calédonienne"].identifier == "0123456.002"
    assert items["Entreprise calédonienne"].identifier_type == "ridet"


@pytest.mark.parametrize("kind,raw,message", [
    ("siret", "732 829 320 00075", "Ce numéro SIRET n'existe pas"),
    ("siret", "1234", "Le numéro SIRET compte 14 chiffres"),
    ("ridet", "123456.001", "Le numéro RIDET compte 7 chiffres"),
    ("ridet", "1234567.01", "Le numéro RIDET compte 7 chiffres"),
])
def test_bad_siret_or_ridet(logged_in, user, svc, kind, raw, message):
    response = add_organisation(logged_in, identifier_type=kind, identifier=raw)
    assert response.status_code == 400
    html = text(response)
    assert message in html and 'href="#identifier"' in html
    assert f'value="{raw}"' in html and 'value="Association des parents"' in html
    assert relations_of(svc, user.id) == []


def test_bad_edit_keeps_the_saved_relation(logged_in, user, svc):
    add_organisation(logged_in)
    (relation,) = relations_of(svc, user.id)
    page = logged_in.get(f"/compte/relations/{relation.id}/modifier")
    response = logged_in.submit(page, "organisation_name", {"identifier": "123"})
    assert response.status_code == 400
    assert relations_of(svc, user.id)[0].identifier == "73282932000074"


def test_relations_of_others_are_out_of_reach(logged_in, new_browser, user_factory, svc):
    other = user_factory()
    browser = new_browser()
    browser.login(other.email)
    add_person(browser)
    (relation,) = relations_of(svc, other.id)
    assert logged_in.get(f"/compte/relations/{relation.id}/modifier").status_code == 404
    page = logged_in.get("/compte/relations")
    response = logged_in.post(f"/compte/relations/{relation.id}/supprimer",
                              data={"csrf_token": csrf_token(page.data)})
    assert response.status_code == 404
    assert len(relations_of(svc, other.id)) == 1


# -- the claim ----------------------------------------------------------------------------
def test_relations_claim_only_with_consent_for_the_scope(logged_in, user, client_factory):
    add_person(logged_in)
    add_organisation(logged_in)
    client = client_factory(scopes=ALL_SCOPES, require_consent=True)
    # asked for and consented: the structured claim
    tokens = sign_in_to(logged_in, client, user, "openid profile relations")
    info = userinfo(logged_in, tokens["access_token"]).json
    kinds = {r["type"]: r for r in info["relations"]}
    assert kinds["person"] == {"id": kinds["person"]["id"], "type": "person",
                               "relationship": "child", "given_name": "Léa",
                               "family_name": "Dupont", "birthdate": "2015-03-12"}
    assert kinds["organisation"]["siret"] == "73282932000074"
    assert kinds["organisation"]["role"] == "Trésorière"
    # not asked: no claim
    tokens = sign_in_to(logged_in, client, user, "openid profile")
    assert "relations" not in userinfo(logged_in, tokens["access_token"]).json


def test_relations_in_the_id_token_of_a_code_and_of_a_refresh(logged_in, user, client_factory):
    # Asked for in the ID token by the claims parameter (OIDC Core 5.5). On PostgreSQL
    # the code exchange and the refresh give the claim source plain rows, not ORM
    # objects (idp/oidc/tokens.py): it must still find its relations.
    add_person(logged_in)
    client = client_factory(scopes=ALL_SCOPES, require_consent=True)
    response, verifier, _ = logged_in.authorize(
        client, scope="openid relations offline_access",
        claims=json.dumps({"id_token": {"relations": None}}))
    code = query_of(logged_in.follow_to_client(response, email=user.email, consent=True))["code"]
    tokens = logged_in.post("/token", headers=basic_auth(client), data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": client.redirect_uri, "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.json
    refreshed = refresh(logged_in, client, tokens.json["refresh_token"])
    assert refreshed.status_code == 200, refreshed.json
    for body in (tokens.json, refreshed.json):
        claims = jwt.decode(body["id_token"], svc_keys(logged_in)).claims
        assert [r["given_name"] for r in claims["relations"]] == ["Léa"]


def test_relations_claim_needs_the_client_to_be_allowed_the_scope(logged_in, user,
                                                                  client_factory):
    add_person(logged_in)
    client = client_factory(require_consent=True)  # registered without "relations"
    tokens = sign_in_to(logged_in, client, user, "openid profile relations")
    assert "relations" not in userinfo(logged_in, tokens["access_token"]).json


def test_relations_claim_refused_consent(logged_in, user, client_factory):
    add_person(logged_in)
    client = client_factory(scopes=ALL_SCOPES, require_consent=True)
    result = sign_in_to(logged_in, client, user, "openid relations", consent=False)
    assert result.get("error") == "access_denied"


def test_consent_screen_lists_the_relations_scope(logged_in, user, client_factory):
    client = client_factory(scopes=ALL_SCOPES, require_consent=True)
    response, _verifier, _query = logged_in.authorize(client, scope="openid relations")
    while response.status_code == 302:
        response = logged_in.get(response.headers["Location"])
    assert "Mes relations" in text(response)

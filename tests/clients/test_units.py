"""The sample apps' own rules, without a provider: file checks, form checks, prefill."""

from __future__ import annotations

import pytest

from clients.common import files, outbox
from clients.common.settings import without_article
from clients.common.web import safe_next
from clients.demarches.procedures import (PROCEDURES, TERRITORIES, field_hint, field_label,
                                          format_phone, prefill, shown_value, validate)

NC, FR = TERRITORIES["NC"], TERRITORIES["FR"]


@pytest.mark.parametrize("data,kind", [
    (b"\x89PNG\r\n\x1a\n...", "png"), (b"%PDF-1.7", "pdf"), (b"\xff\xd8\xff\xe0", "jpg"),
    (b"AC1027\x00", "dwg"), (b"GIF89a", None), (b"PK\x03\x04", None)])
def test_the_type_comes_from_the_content(data, kind):
    assert files.detect_kind(data) == kind


def test_checks_answer_in_french():
    assert files.check(b"", 10)[1].startswith("Le fichier est vide")
    assert "taille maximale" in files.check(b"%PDF-" + b"x" * 2 * 1024 * 1024, 1024 * 1024)[1]
    assert "pas au format" in files.check(b"<html>", 100)[1]
    assert files.check(b"%PDF-1.4", 100) == ("pdf", None)


def test_a_draft_is_checked_only_where_filled_and_a_submission_fully():
    housing = PROCEDURES["aide-logement"]
    values, errors = validate(housing, {"code_postal": "123"}, partial=True)
    assert set(errors) == {"code_postal"}
    values, errors = validate(housing, {}, partial=False)
    assert {"prenom", "nom", "email", "situation", "personnes", "loyer"} <= set(errors)
    assert errors["situation"] == "Choisissez une réponse pour « Votre situation »."
    good = {"prenom": "Camille", "nom": "Martin", "email": "c@example.org",
            "adresse": "1 rue", "code_postal": "69002", "commune": "Lyon",
            "situation": "locataire", "personnes": "2", "loyer": "540,50"}
    assert validate(housing, good, partial=False)[1] == {}
    assert "annee" in validate(PROCEDURES["aide-etudes"], {**good, "annee": "12"},
                               partial=True)[1]


def test_prefill_from_claims_and_from_a_relation():
    userinfo = {"given_name": "Camille", "family_name": "Martin", "email": "c@example.org",
                "phone_number": "+33612345678",
                "address": {"street_address": "1 rue", "postal_code": "69002",
                            "locality": "Lyon"}}
    values = prefill(userinfo)
    assert values["telephone"] == "06 12 34 56 78" and values["commune"] == "Lyon"
    child = {"type": "person", "given_name": "Léa", "family_name": "Martin"}
    assert prefill(userinfo, child)["prenom"] == "Léa"


@pytest.mark.parametrize("e164,region,shown", [
    ("+33612345678", "FR", "06 12 34 56 78"), ("+687712233", "NC", "71 22 33"),
    ("+33612345678", "NC", "+33 6 12 34 56 78"), ("+687712233", "FR", "+687 71 22 33"),
    ("+1", "FR", "+1"), (None, "FR", "")])
def test_phone_numbers_read_as_in_the_territory(e164, region, shown):
    assert format_phone(e164, region) == shown


def test_a_new_caledonian_form_takes_local_numbers_and_whole_cfp_francs():
    housing = PROCEDURES["aide-logement"]
    base = {"prenom": "Tehani", "nom": "Wamytan", "email": "t@example.nc",
            "adresse": "1 rue", "code_postal": "98800", "commune": "Nouméa",
            "situation": "locataire", "personnes": "2"}
    ok = {**base, "telephone": "71 22 33", "loyer": "65 000"}
    assert validate(housing, ok, partial=False, territory=NC)[1] == {}
    errors = validate(housing, {**base, "telephone": "06 12 34 56 78", "loyer": "650,50"},
                      partial=False, territory=NC)[1]
    assert errors["telephone"].endswith("par exemple 71 22 33.")
    assert errors["loyer"] == ("Indiquez un montant en francs CFP (XPF), sans centimes, "
                               "par exemple 65000.")
    # The same answers in France: euros with cents, a metropolitan number.
    assert validate(housing, {**base, "telephone": "06 12 34 56 78", "loyer": "650,50"},
                    partial=False, territory=FR)[1] == {}
    assert "loyer" in validate(housing, {**base, "loyer": "20000000"}, partial=False,
                               territory=NC)[1]
    loyer = housing.field("loyer")
    assert field_label(loyer, NC) == "Loyer mensuel, charges comprises, en francs CFP (XPF)"
    assert field_label(loyer, FR) == "Loyer mensuel, charges comprises, en euros"
    assert field_hint(housing.field("code_postal"), NC) == "5 chiffres, par exemple 98800."
    assert shown_value(loyer, "65000", NC) == "65\u00a0000\u00a0F\u00a0CFP"
    assert shown_value(loyer, "540,5", FR) == "540,50\u00a0€"
    assert shown_value(housing.field("situation"), "locataire", FR) == "Locataire"
    assert shown_value(housing.field("commune"), "", FR) == "–"


def test_a_multi_line_address_keeps_its_lines():
    housing = PROCEDURES["aide-logement"]
    typed = "  12 rue Jean Jaurès \r\n\r\nQuartier Latin\r\nBP 1234\n"
    values, errors = validate(housing, {"adresse": typed}, partial=True)
    assert values["adresse"] == "12 rue Jean Jaurès\nQuartier Latin\nBP 1234"
    assert "adresse" not in errors
    many = "\n".join(f"ligne {n}" for n in range(9))
    assert validate(housing, {"adresse": many}, partial=True)[0]["adresse"].count("\n") == 4
    claims = {"address": {"street_address": "12 rue Jean Jaurès\nQuartier Latin\nBP 1234"}}
    assert prefill(claims)["adresse"] == "12 rue Jean Jaurès\nQuartier Latin\nBP 1234"
    assert validate(housing, {"adresse": " \n "}, partial=False)[1]["adresse"] == \
        "Renseignez le champ « Adresse »."


@pytest.mark.parametrize("name,title", [
    ("la Province Sud", "Province Sud"), ("la Région", "Région"),
    ("l'Île-de-France", "Île-de-France"), ("Métropole de Lyon", "Métropole de Lyon")])
def test_the_organisation_name_in_titles(name, title):
    assert without_article(name) == title


@pytest.mark.parametrize("value,safe", [("/dossiers/1", "/dossiers/1"), ("//evil.example", None),
                                        ("https://evil.example/", None), ("/\\evil", None),
                                        (None, None)])
def test_only_local_paths_are_followed_after_sign_in(value, safe):
    assert safe_next(value) == safe


def test_the_outbox_writes_private_files(tmp_path):
    path = outbox.write(tmp_path, "email", "c@example.org", "Sujet", "Texte")
    assert path.stat().st_mode & 0o077 == 0
    assert outbox.read(tmp_path) == [{"kind": "email", "to": "c@example.org",
                                      "subject": "Sujet", "text": "Texte"}]


@pytest.fixture
def demarches_app(tmp_path):
    """The démarche app with its agent password, no provider needed for its staff pages."""
    from clients.demarches.app import create_app

    return create_app({"ISSUER": "http://127.0.0.1:9", "CLIENT_ID": "demarches",
                       "CLIENT_SECRET": "secret", "SECRET_KEY": "k" * 32,
                       "DATABASE_URL": f"sqlite:///{tmp_path / 'demarches.sqlite3'}",
                       "OUTBOX_DIR": str(tmp_path / "outbox"),
                       "AGENT_PASSWORD": "agent-password"})


def basic(username: str, password: str) -> dict:
    import base64
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("headers", [
    {}, basic("agent", "wrong"), basic("someone", "agent-password"),
    {"Authorization": "Bearer agent-password"}])
def test_the_agent_pages_want_the_agent_password(demarches_app, headers):
    answer = demarches_app.test_client().get("/agent", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="agent", charset="UTF-8"'


def test_the_agent_pages_open_with_it_and_do_not_exist_without_one(demarches_app, tmp_path):
    answer = demarches_app.test_client().get("/agent", headers=basic("agent", "agent-password"))
    assert answer.status_code == 200 and "Espace agent" in answer.get_data(as_text=True)
    assert demarches_app.test_client().get("/", headers={}).status_code == 200

    from clients.demarches.app import create_app
    without = create_app({"ISSUER": "http://127.0.0.1:9", "CLIENT_ID": "demarches",
                          "CLIENT_SECRET": "secret", "SECRET_KEY": "k" * 32,
                          "DATABASE_URL": f"sqlite:///{tmp_path / 'other.sqlite3'}",
                          "AGENT_PASSWORD": ""})
    assert without.test_client().get("/agent",
                                     headers=basic("agent", "")).status_code == 404


def test_a_territory_the_app_does_not_know_is_refused(tmp_path):
    from clients.demarches.app import create_app

    with pytest.raises(RuntimeError, match="DEMARCHES_REGION"):
        create_app({"ISSUER": "http://127.0.0.1:9", "CLIENT_ID": "d", "CLIENT_SECRET": "s",
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "REGION": "XX"})

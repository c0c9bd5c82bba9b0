"""The sample apps' own rules, without a provider: file checks, form checks, prefill."""

from __future__ import annotations

import pytest

from clients.common import files, outbox
from clients.common.web import safe_next
from clients.demarches.procedures import PROCEDURES, prefill, validate


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

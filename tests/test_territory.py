"""What differs from one territory to another: the organisation's name in sentences, phone
numbers of the service's region, and the New Caledonia preset."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from idp.config import load_settings
from idp.i18n import of_name, sentence_start, to_name
from idp.messaging.phone import format_for, parse_phone
from idp.messaging.templates import render_message
from idp.web.territory import phone_hint
from tests.support import Browser

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name,of,to", [
    ("la Province Sud", "de la Province Sud", "à la Province Sud"),
    ("le Département", "du Département", "au Département"),
    ("les Îles Loyauté", "des Îles Loyauté", "aux Îles Loyauté"),
    ("l'Agglomération", "de l'Agglomération", "à l'Agglomération"),
    ("Nouméa", "de Nouméa", "à Nouméa"),
])
def test_the_organisation_name_reads_in_a_sentence(name, of, to):
    assert of_name(name) == of and to_name(name) == to


def test_a_sentence_starts_with_a_capital():
    assert sentence_start("la Province Sud") == "La Province Sud"


def test_new_caledonian_numbers_in_a_new_caledonian_service():
    assert parse_phone("71 22 33", "NC") == "+687712233"
    assert format_for("+687712233", "NC") == "71 22 33"
    # The same number read in metropolitan France, and the reverse.
    assert format_for("+687712233", "FR") == "+687 71 22 33"
    assert format_for("+33612345678", "NC") == "+33 6 12 34 56 78"
    assert format_for("+33612345678", "FR") == "06 12 34 56 78"


def test_the_phone_hint_follows_the_region(app):
    with app.test_request_context():
        metropole = phone_hint("FR")
        caledonia = phone_hint("NC")
    assert "06 12 34 56 78" in metropole and "hors de métropole" in metropole
    assert "hors de France" not in metropole + caledonia
    assert re.search(r"Par exemple \d\d \d\d \d\d\.", caledonia)
    assert "+33" in caledonia


def test_messages_name_the_organisation_with_its_article():
    _subject, text, html = render_message(
        "account_deleted", "fr", organisation_name="la Province Sud",
        service_name="Compte usager", when="01/01/2027 à 10:00",
        support_url="https://idp.example.nc/mot-de-passe-perdu/assistance",
        support_email="assistance@province-sud.nc", support_phone="20 30 40")
    assert "Assistance de la Province Sud\u00a0: assistance@province-sud.nc, 20 30 40" in text
    assert "Compte usager – La Province Sud" in text


PRESETS = sorted((ROOT / "config" / "examples").glob("*.toml"))


def test_there_is_a_preset_for_new_caledonia_and_one_for_a_metropolitan_region():
    names = [p.stem for p in PRESETS]
    assert "province-sud" in names and len(names) >= 2


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_each_preset_loads_and_is_complete(preset):
    settings = load_settings(environ={"IDP_CONFIG": str(preset)})
    assert settings.organisation_name[:3].lower() in ("la ", "le ", "les") or \
        settings.organisation_name[:2].lower() == "l'"
    assert settings.support.email and settings.support.phone
    assert settings.legal.data_controller and settings.legal.publisher
    assert settings.registration.terms_version


def test_the_province_sud_preset():
    settings = load_settings(environ={"IDP_CONFIG": str(ROOT / "config/examples/province-sud.toml")})
    assert settings.messaging.default_region == "NC"
    assert settings.display_timezone == "Pacific/Noumea"
    assert settings.organisation_name == "la Province Sud"


def test_a_new_caledonian_service_end_to_end(make_app):
    app = make_app(messaging={"default_region": "NC"}, organisation_name="la Province Sud",
                   display_timezone="Pacific/Noumea", registration={"captcha_backend": "test"})
    browser = Browser(app.test_client())
    page = browser.get("/inscription").get_data(as_text=True)
    assert "hors de France" not in page and "+33" in page
    assert "<p>La Province Sud</p>" in page  # the footer

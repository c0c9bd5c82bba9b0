"""NUL and control characters: refused with a clear answer, never a 500 (PostgreSQL
cannot store or compare a NUL), and nothing saved is changed."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

import pytest

from idp.security.input_guard import carries_nul
from tests.account.conftest import load_user, text
from tests.conftest import basic_auth

FORM = "application/x-www-form-urlencoded"
REFUSED = "La demande contient un caractère non autorisé"


def test_carries_nul_looks_at_the_path_names_and_values():
    assert not carries_nul("/login", [("email", "a@example.org"), ("x", "\x01")])
    assert carries_nul("/login\x00", [])
    assert carries_nul("/login", [("email", "a\x00@example.org")])
    assert carries_nul("/login", [("e\x00mail", "a@example.org")])


@pytest.mark.parametrize("url", [
    "/login?flow=%00", "/login?return_to=/compte/%00", "/admin/journal?type=%00",
    "/admin/clients/%00", "/compte/relations/%00/modifier", "/inscription/confirmer/%00",
    "/authorize/resume/%00", "/logout?client_id=%00",
])
def test_a_nul_in_the_address_gets_a_page_in_french(browser, url):
    response = browser.get(url)
    assert response.status_code == 400
    assert REFUSED in text(response)


def test_a_nul_in_a_form_gets_a_page_and_saves_nothing(browser, user, svc):
    assert browser.login(user.email).status_code == 302
    page = browser.get("/compte/profil")
    response = browser.submit(page, "given_name", {"given_name": "Ma\x00rie",
                                                   "locality": "Bourail"})
    assert response.status_code == 400
    assert REFUSED in text(response)
    saved = load_user(svc, user.id)
    assert saved.given_name == "Marie" and saved.locality is None


def test_a_nul_in_the_login_form_is_not_a_sign_in_attempt(browser, user):
    page = browser.get("/login")
    response = browser.submit(page, "email", {"email": user.email + "\x00",
                                              "password": "x"})
    assert response.status_code == 400 and REFUSED in text(response)
    # The account was never looked up, so it is not one failure closer to a lockout.
    assert browser.login(user.email).status_code == 302


def test_a_nul_in_an_authorization_request_gets_the_error_page(browser, rp):
    for params in ({"client_id": "\x00"}, {"client_id": rp.client_id, "redirect_uri": "\x00"},
                   {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
                    "response_type": "code", "scope": "openid\x00"}):
        response = browser.get("/authorize?" + urlencode(params))
        assert response.status_code == 400, params
        assert "Location" not in response.headers


def test_a_nul_at_the_token_endpoint_is_invalid_request(browser, client_factory):
    service = client_factory(grant_types=["client_credentials"], scopes=["openid"])
    for body in ("grant_type=client_credentials&scope=" + quote("openid\x00"),
                 "grant_type=authorization_code&code=x&redirect_uri=" + quote("\x00"),
                 "grant_type%00=client_credentials"):
        response = browser.post("/token", data=body, headers=basic_auth(service),
                                content_type=FORM)
        assert response.status_code == 400, body
        assert response.json["error"] == "invalid_request"
    response = browser.post("/introspect", data="token=" + quote("\x00"),
                            headers=basic_auth(service), content_type=FORM)
    assert response.status_code == 400 and response.json["error"] == "invalid_request"


def test_a_nul_client_id_in_basic_authentication_is_an_unknown_client(browser):
    credentials = base64.b64encode(b"\x00client:secret").decode()
    response = browser.post("/token", data="grant_type=client_credentials",
                            headers={"Authorization": "Basic " + credentials},
                            content_type=FORM)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_a_nul_in_the_user_agent_is_dropped_from_what_is_stored(browser, user, svc, app):
    from sqlalchemy import select

    from idp.persistence.models import AuditEvent

    browser.client.environ_base["HTTP_USER_AGENT"] = "Mozilla\x00/5.0"
    assert browser.login(user.email).status_code == 302
    with app.app_context():
        event = svc.db.session.scalar(select(AuditEvent).where(AuditEvent.type == "login.success"))
        assert event.user_agent == "Mozilla/5.0"


@pytest.mark.parametrize("value", ["Ma\x01rie", "Marie\x1b[31m", "Ma\x7frie", "Ma\x0brie"])
def test_a_control_character_is_refused_next_to_the_field(browser, user, svc, value):
    assert browser.login(user.email).status_code == 302
    page = browser.get("/compte/profil")
    response = browser.submit(page, "given_name", {"given_name": value,
                                                   "locality": "Bourail"})
    assert response.status_code == 400
    html = text(response)
    assert "Ce champ contient un caractère invisible non autorisé" in html
    assert 'href="#given_name"' in html
    saved = load_user(svc, user.id)
    assert saved.given_name == "Marie" and saved.locality is None


def test_a_line_break_in_a_text_field_is_not_a_control_character_error(browser, user):
    assert browser.login(user.email).status_code == 302
    page = browser.get("/compte/profil")
    response = browser.submit(page, "given_name", {"street_address": "1 rue de la Paix\r\n"
                                                                     "Bâtiment B"})
    assert "caractère invisible" not in text(response)

"""End to end: the démarche app set for New Caledonia (as ``scripts/demo --preset
province-sud`` starts it), a citizen whose address takes three lines, and the message
the app gives once the citizen withdrew its access in "Mon compte"."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import pytest

from clients.common.web import ACCESS_WITHDRAWN
from idp.demo import DEMARCHES, register_app
from tests.e2e.conftest import WebBrowser, form_with, free_port
from tests.support import csrf_token

pytestmark = pytest.mark.live_server

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
ADDRESS = "12 rue Jean Jaurès\nQuartier Latin\nBP 1234"


@pytest.fixture
def noumea(app, svc, live, start_provider, start_client_app, user_factory):
    port = free_port()
    with app.app_context():
        secret = register_app(svc, DEMARCHES, port)
    user = user_factory(email="tehani.wamytan@example.nc", given_name="Tehani",
                        family_name="Wamytan", phone_number="+687712233",
                        phone_number_verified=True, street_address=ADDRESS,
                        postal_code="98800", locality="Nouméa", country="Nouvelle-Calédonie")
    start_provider()
    start_client_app("clients.demarches", "DEMARCHES_", live.issuer, DEMARCHES.client_id,
                     secret, port, REGION="NC", ORGANISATION="la Province Sud")
    return {"issuer": live.issuer, "user": user, "app": f"http://127.0.0.1:{port}"}


def follow(browser: WebBrowser, response):
    while response.is_redirect:
        response = browser.get(urljoin(response.url, response.headers["Location"]))
    return response


def signed_in_draft(browser: WebBrowser, app_url: str, email: str):
    home = browser.drive(browser.get(app_url + "/connexion"), email=email)
    assert home.url == app_url + "/", home.text[:500]
    return follow(browser, browser.submit(browser.get(app_url + "/demarches/aide-logement"),
                                          "start"))


def post(browser: WebBrowser, page, **values):
    form = form_with(page.text, "nom")
    data = {**form["fields"], "situation": "locataire", "personnes": "3",
            "action": "submit", **values}
    return browser.post(urljoin(page.url, form["action"]), data=data,
                        files={"piece-domicile": ("bail.pdf", PDF)})


def test_a_new_caledonian_citizen_files_in_xpf_with_a_three_line_address(noumea):
    browser = WebBrowser()
    page = signed_in_draft(browser, noumea["app"], noumea["user"].email)
    fields = form_with(page.text, "nom")["fields"]
    # Typed as people in Nouméa write it, and the address keeps its lines.
    assert fields["telephone"] == "71 22 33"
    assert fields["adresse"] == ADDRESS
    text = html.unescape(page.text)
    assert "Loyer mensuel, charges comprises, en francs CFP (XPF)" in text
    assert "par exemple 98800" in text and "Province Sud – Démarches en ligne" in text

    refused = post(browser, page, loyer="65000,50", telephone="06 12 34 56 78")
    assert refused.status_code == 400
    refused_text = html.unescape(refused.text)
    assert "Indiquez un montant en francs CFP (XPF), sans centimes" in refused_text
    assert "par exemple 71 22 33" in refused_text  # a metropolitan number needs +33

    done = follow(browser, post(browser, page, loyer="65 000", telephone="+33 6 12 34 56 78"))
    assert "Votre demande est enregistrée" in done.text, done.text[:800]
    summary = html.unescape(done.text)
    assert "65\u00a0000\u00a0F\u00a0CFP" in summary
    assert re.search(r'<dd class="pre">12 rue Jean Jaurès\nQuartier Latin\nBP 1234</dd>',
                     summary), "the address lost its lines"


def test_access_withdrawn_in_the_account_is_said_so_by_the_app(noumea):
    browser = WebBrowser()
    page = signed_in_draft(browser, noumea["app"], noumea["user"].email)
    account = browser.get(noumea["issuer"] + "/compte/applications")
    withdrawn = browser.post(
        noumea["issuer"] + f"/compte/applications/{DEMARCHES.client_id}/retirer",
        data={"csrf_token": csrf_token(account.text)})
    assert withdrawn.status_code in (302, 303)

    refresh = form_with(page.text, "next")
    home = follow(browser, browser.post(urljoin(page.url, refresh["action"]),
                                        data=refresh["fields"]))
    assert ACCESS_WITHDRAWN in html.unescape(home.text)
    assert "Connexion" in home.text or "connexion" in home.text
    # Signed out of the app: the draft is no longer reachable without signing in again.
    again = browser.get(page.url)
    assert again.status_code == 302 and "/connexion" in again.headers["Location"]


def test_the_apps_have_their_own_icon(noumea):
    browser = WebBrowser()
    icon = browser.get(noumea["app"] + "/favicon.ico")
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in icon.content
    home = browser.get(noumea["app"] + "/")
    assert re.search(r'<link rel="icon" href="/static/favicon.svg"', home.text)
    assert browser.get(noumea["app"] + "/static/favicon.svg").status_code == 200

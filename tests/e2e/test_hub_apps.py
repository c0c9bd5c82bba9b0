"""End to end: the provider, the démarche app and the news app as real processes.

A démarche submitted in the app shows in "Mes demandes"; the agent's status change
notifies the citizen; a wallet document reaches the app only once the citizen picked
it; the news app signs the citizen in without a password (single sign-on) and sends
news to the subscribers of a theme, whose signed link unsubscribes them.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import pytest
import requests

from clients.common.outbox import read as read_app_outbox
from idp.demo import ACTUALITES, DEMARCHES, register_app
from idp.messaging.outbox import read_outbox
from tests.e2e.conftest import HTTP_TIMEOUT, WebBrowser, form_with, free_port
from tests.support import csrf_token

pytestmark = pytest.mark.live_server

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
AGENT_PASSWORD = "agent-password-e2e"
EDITOR_PASSWORD = "editor-password-e2e"


@pytest.fixture
def stack(app, svc, live, start_provider, start_client_app, user_factory, tmp_path):
    """Both apps registered (as the demo registers them), the three processes started,
    and a citizen; returns the URLs and the citizen."""
    ports = {DEMARCHES: free_port(), ACTUALITES: free_port()}
    with app.app_context():
        secrets = {a: register_app(svc, a, p) for a, p in ports.items()}
    user = user_factory(email="camille.martin@example.org", given_name="Camille",
                        family_name="Martin", phone_number="+33612345678",
                        phone_number_verified=True, street_address="12 rue de la République",
                        postal_code="69002", locality="Lyon", country="France")
    with app.app_context():
        from idp.persistence.models.relations import Relation

        svc.db.session.add(Relation(user_id=user.id, kind="person", relationship="child",
                                    given_name="Léa", family_name="Martin"))
        svc.db.session.commit()
    start_provider()
    start_client_app("clients.demarches", "DEMARCHES_", live.issuer, DEMARCHES.client_id,
                     secrets[DEMARCHES], ports[DEMARCHES], AGENT_PASSWORD=AGENT_PASSWORD)
    start_client_app("clients.actualites", "ACTUALITES_", live.issuer, ACTUALITES.client_id,
                     secrets[ACTUALITES], ports[ACTUALITES], EDITOR_PASSWORD=EDITOR_PASSWORD)
    return {"issuer": live.issuer, "user": user,
            "demarches": f"http://127.0.0.1:{ports[DEMARCHES]}",
            "actualites": f"http://127.0.0.1:{ports[ACTUALITES]}",
            "provider_outbox": tmp_path / "outbox",
            "app_outbox": tmp_path / "demarches-outbox",
            "news_outbox": tmp_path / "actualites-outbox"}


def follow(browser: WebBrowser, response: requests.Response) -> requests.Response:
    while response.is_redirect:
        response = browser.get(urljoin(response.url, response.headers["Location"]))
    return response


def new_dossier(browser: WebBrowser, app_url: str, email: str) -> requests.Response:
    home = browser.drive(browser.get(app_url + "/connexion"), email=email)
    assert home.url == app_url + "/", home.text[:500]
    return follow(browser, browser.submit(browser.get(app_url + "/demarches/aide-logement"),
                                          "start"))


def post_dossier(browser, page, action: str, files=None, **values) -> requests.Response:
    form = form_with(page.text, "nom")
    data = {**form["fields"], "situation": "locataire", "personnes": "3", "loyer": "620",
            "action": action, **values}
    return browser.post(urljoin(page.url, form["action"]), data=data, files=files)


class Agent:
    def __init__(self, app_url: str) -> None:
        self.url = app_url
        self.http = requests.Session()
        self.http.auth = ("agent", AGENT_PASSWORD)

    def dossier_page(self, number: str) -> requests.Response:
        index = self.http.get(self.url + "/agent", timeout=HTTP_TIMEOUT)
        assert index.status_code == 200 and number in index.text
        path = re.search(r'href="(/agent/dossiers/[^"]+)">' + re.escape(number), index.text)
        return self.http.get(self.url + path.group(1), timeout=HTTP_TIMEOUT)

    def post(self, page: requests.Response, **data) -> requests.Response:
        return self.http.post(page.url, data={"csrf_token": csrf_token(page.text), **data},
                              timeout=HTTP_TIMEOUT, allow_redirects=False)


def test_a_submitted_demarche_is_followed_in_the_account(stack):
    app_url, issuer, user = stack["demarches"], stack["issuer"], stack["user"]
    browser = WebBrowser()
    page = new_dossier(browser, app_url, user.email)
    assert form_with(page.text, "nom")["fields"]["prenom"] == "Camille"  # from the claims

    # Acting for a relation (the ``relations`` claim): the names come from it.
    assert "Pour Léa Martin" in page.text
    relation_id = re.search(r'name="beneficiary" value="([^"]+)"[^>]*> <label[^>]*>Pour Léa',
                            page.text).group(1)
    page = follow(browser, post_dossier(browser, page, "save", beneficiary=relation_id))
    assert form_with(page.text, "nom")["fields"]["prenom"] == "Léa"
    refused = post_dossier(browser, page, "submit",
                           files={"piece-domicile": ("bail.pdf", b"not a pdf at all")})
    assert refused.status_code == 400
    assert "pas au format PNG, PDF, JPEG ou DWG" in html.unescape(refused.text)
    done = follow(browser, post_dossier(browser, page, "submit",
                                        files={"piece-domicile": ("bail.pdf", PDF)}))
    assert "Votre demande est enregistrée" in done.text
    number = re.search(r"<strong>(AL-\d{4}-\d{5})</strong>", done.text).group(1)
    mails = [m for m in read_app_outbox(stack["app_outbox"]) if m["to"] == user.email]
    assert mails and number in mails[-1]["subject"]

    # In "Mon compte" (the same browser: signed in to the provider already).
    requests_page = browser.get(issuer + "/compte/demandes")
    assert requests_page.status_code == 200
    assert number in requests_page.text and "Déposée" in requests_page.text
    assert "pour Léa Martin" in requests_page.text
    assert "Direction de l&#39;habitat et du logement" in requests_page.text

    # The agent moves it on: the citizen is notified by e-mail and in "Mon compte".
    agent = Agent(app_url)
    dossier = agent.dossier_page(number)
    assert "bail.pdf" in dossier.text
    moved = agent.post(dossier, action="status", status="awaiting_citizen",
                       comment="Merci de joindre votre dernier avis d'imposition.")
    assert moved.status_code == 302, moved.text[:500]
    notices = [m for m in read_outbox(stack["provider_outbox"])
               if m["to"] == user.email and number in m["subject"]]
    assert notices and "En attente de compléments" in notices[-1]["subject"]
    account = browser.get(issuer + "/compte/notifications")
    assert number in account.text and "count-badge" in account.text
    assert "En attente de compléments" in browser.get(issuer + "/compte/demandes").text

    # The citizen answers from "Mon compte"; the agent reads it.
    listing = browser.get(issuer + "/compte/demandes")
    detail_path = re.search(r'href="(/compte/demandes/[^"]+)">', listing.text).group(1)
    detail = browser.get(issuer + detail_path)
    assert "avis d&#39;imposition" in detail.text
    answer = browser.post(issuer + detail_path, data={"csrf_token": csrf_token(detail.text),
                                                      "body": "Je l'envoie demain."})
    assert answer.status_code == 302
    assert "Je l&#39;envoie demain." in agent.dossier_page(number).text


def test_a_wallet_document_reaches_the_app_with_consent_only(stack):
    app_url, issuer, user = stack["demarches"], stack["issuer"], stack["user"]
    browser = WebBrowser()
    page = new_dossier(browser, app_url, user.email)
    wallet = browser.get(issuer + "/compte/porte-documents")
    added = browser.post(issuer + "/compte/porte-documents", data={
        "csrf_token": csrf_token(wallet.text), "name": "Quittance de mars",
        "document_date": "31/03/2026"}, files={"file": ("quittance.png", PNG)})
    assert added.status_code == 302

    # The app sends the citizen to pick a document; the citizen cancels: nothing comes.
    to_pick = post_dossier(browser, page, "wallet:domicile")
    assert to_pick.headers["Location"].startswith(issuer + "/compte/porte-documents/choisir?")
    pick = browser.get(to_pick.headers["Location"])
    assert "Quittance de mars" in pick.text and "Démarches en ligne" in html.unescape(pick.text)
    form = form_with(pick.text, "state")
    back = follow(browser, browser.post(issuer + "/compte/porte-documents/choisir",
                                        data={**form["fields"], "decision": "cancel"}))
    assert "Aucun document n&#39;a été transmis" in back.text and "Joint :" not in back.text

    # Then picks it: the app reads that one document.
    pick = browser.get(post_dossier(browser, back, "wallet:domicile").headers["Location"])
    form = form_with(pick.text, "state")
    shared = browser.post(issuer + "/compte/porte-documents/choisir",
                          data={**form["fields"], "decision": "share"})
    return_url = shared.headers["Location"]
    assert return_url.startswith(app_url + "/porte-documents/retour?") and "grant=" in return_url
    attached = follow(browser, browser.get(return_url))
    assert "depuis votre porte-documents" in attached.text
    assert "Quittance de mars" in html.unescape(attached.text)
    replay = follow(browser, browser.get(return_url))  # the same return again
    assert "n&#39;est pas reconnu" in replay.text

    done = follow(browser, post_dossier(browser, attached, "submit"))
    number = re.search(r"<strong>(AL-\d{4}-\d{5})</strong>", done.text).group(1)
    agent_page = Agent(app_url).dossier_page(number)
    assert "porte-documents" in agent_page.text
    piece = re.search(r'href="(/agent/pieces/[^"]+)"', agent_page.text).group(1)
    assert Agent(app_url).http.get(app_url + piece, timeout=HTTP_TIMEOUT).content == PNG

    # The citizen deletes their account: the app hears of it and deletes the dossier.
    confirm = browser.get(issuer + "/compte/supprimer")
    deleted = browser.post(issuer + "/compte/supprimer",
                           data={"csrf_token": csrf_token(confirm.text), "confirm": "y"})
    assert deleted.status_code == 200 and "a été supprimé" in html.unescape(deleted.text)
    index = Agent(app_url).http.get(app_url + "/agent", timeout=HTTP_TIMEOUT)
    assert "1 dossier(s) supprimé(s)" in index.text and number not in index.text


def test_single_sign_on_and_news_to_subscribers(stack):
    news_url, issuer, user = stack["actualites"], stack["issuer"], stack["user"]
    browser = WebBrowser()
    browser.drive(browser.get(stack["demarches"] + "/connexion"), email=user.email)

    # Signed in to the provider already: the news app asks for consent, not a password.
    response = browser.get(news_url + "/connexion")
    for _ in range(10):
        if response.is_redirect:
            response = browser.get(urljoin(response.url, response.headers["Location"]))
            continue
        assert 'name="password"' not in response.text, "asked for the password again"
        if 'value="allow"' in response.text:
            response = browser.submit(response, "decision", button=("decision", "allow"))
            continue
        break
    assert response.url == news_url + "/" and "Bonjour Camille" in response.text

    subscriptions = browser.get(issuer + "/compte/abonnements")
    saved = browser.post(issuer + "/compte/abonnements", data={
        "csrf_token": csrf_token(subscriptions.text), "theme-offres-emploi": "email"})
    assert saved.status_code == 302

    editor = requests.Session()
    editor.auth = ("redaction", EDITOR_PASSWORD)
    form = editor.get(news_url + "/redaction", timeout=HTTP_TIMEOUT)
    assert "Offres d&#39;emploi" in form.text
    published = editor.post(news_url + "/redaction", timeout=HTTP_TIMEOUT, data={
        "csrf_token": csrf_token(form.text), "theme": "offres-emploi",
        "title": "Recrutement : agent d'accueil", "body": "Poste ouvert jusqu'au 30 juin."})
    assert "envoyé à 1 abonné" in published.text
    mails = [m for m in read_app_outbox(stack["news_outbox"]) if m["to"] == user.email]
    assert len(mails) == 1 and "agent d'accueil" in mails[0]["subject"]
    link = re.search(r"Se désabonner : (\S+)", mails[0]["text"]).group(1)
    assert link.startswith(issuer + "/compte/abonnements/desabonner/")

    anonymous = WebBrowser()
    confirm = anonymous.get(link)
    done = anonymous.post(link, data={"csrf_token": csrf_token(confirm.text)})
    assert "Vous êtes désabonné" in done.text
    again = editor.post(news_url + "/redaction", timeout=HTTP_TIMEOUT, data={
        "csrf_token": csrf_token(form.text), "theme": "offres-emploi",
        "title": "Deuxième offre", "body": "Texte."})
    assert "envoyé à 0 abonné" in again.text

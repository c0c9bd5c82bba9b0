"""Every page of the provider, in its interesting states, passes the static accessibility
check of tests/a11y.py (lang, title, one h1, skip link, labels, errors tied to their
field, radio groups, no inline script or style, named buttons and images, autocomplete).

A new page is one line in PAGES: ``page("name", "/path")`` for a page reached by a GET,
``page("name", "/path", signed_in=True)`` for a page of a signed-in user, or a function
decorated with ``@scenario("name")`` that returns the response to check.
"""

from __future__ import annotations

import re
import uuid
from typing import Callable

import pyotp
import pytest

from idp.flows.recovery import CODE_ALPHABET
from idp.messaging.outbox import read_outbox
from idp.persistence.models import MfaCredential, utcnow
from idp.security import mfa
from tests.a11y import assert_accessible, parse, problems
from tests.flows.conftest import STRONG_PASSWORD, app  # noqa: F401  (app: with the test captcha)
from tests.support import csrf_token, form_with, forms

CAPTCHA_OK = {"captcha_payload": "test-pass"}
RECOVERY_CODE_RE = re.compile(rf"\b[{CODE_ALPHABET}]{{6}}\b")
TOTP_KEY_RE = re.compile(r'id="cle-totp"[^>]*>([A-Z2-7 ]+)<')


class Visit:
    """A browser on the provider, with the steps that lead to each page. The browser is a
    tests.support.Browser: over the Flask test client here, over HTTP in
    scripts/a11y-screens (which then sets ``local`` to the live server's address)."""

    local = ("http://127.0.0.1:5000", "http://localhost/")

    def __init__(self, app, svc, browser, user, user_factory, client_factory) -> None:
        self.app, self.svc, self.browser, self.user = app, svc, browser, user
        self.user_factory, self.client_factory = user_factory, client_factory

    def follow(self, response, status=200):
        for _ in range(10):
            if response.status_code not in (301, 302, 303):
                break
            location = response.headers["Location"]
            if location.startswith("http") and not location.startswith(self.local):
                raise AssertionError(f"left the provider for {location}")
            response = self.browser.get(location)
        assert status is None or response.status_code == status, \
            (response.status_code, response.data[:400])
        return response

    def open(self, path: str, status=200):
        return self.follow(self.browser.get(path), status)

    def send(self, page, field: str, values: dict | None = None, status=200, button=None):
        """Post the form holding ``field`` (or posting to the path ``field``), its own values
        overridden by ``values`` (None leaves a field out); follow the redirects."""
        if field.startswith("/"):
            form = next(f for f in forms(page.data) if f["action"].startswith(field))
        else:
            form = form_with(page.data, field)
        data = {**form["fields"], **(values or {})}
        if button:
            data[button[0]] = button[1]
        response = self.browser.post(form["action"],
                                     data={k: v for k, v in data.items() if v is not None})
        return self.follow(response, status)

    def sign_in(self, user=None):
        response = self.browser.login((user or self.user).email)
        assert response.status_code in (302, 303), response.data[:400]
        return response

    def outbox(self, to: str) -> list[dict]:
        path = self.svc.settings.resolve_path(self.svc.settings.messaging.outbox_dir)
        return [m for m in read_outbox(path) if m["to"] == to]

    def with_totp(self):
        """A second user, with a confirmed authenticator application."""
        user = self.user_factory(email=f"mfa-{uuid.uuid4().hex[:6]}@example.org")
        secret = pyotp.random_base32(32)
        with self.app.app_context():
            self.svc.db.session.add(MfaCredential(
                user_id=user.id, kind="totp", secret=mfa.seal(self.svc.secret_key, user.id, secret),
                confirmed_at=utcnow()))
            self.svc.db.session.commit()
            self.svc.db.session.remove()
        return user, pyotp.TOTP(secret)


@pytest.fixture
def visit(app, svc, browser, user, user_factory, client_factory):
    return Visit(app, svc, browser, user, user_factory, client_factory)


PAGES: dict[str, Callable[[Visit], object]] = {}


def scenario(name: str):
    def register(fn):
        assert name not in PAGES, name
        PAGES[name] = fn
        return fn
    return register


def page(name: str, path: str, signed_in=False, status=200) -> None:
    def visit_page(v: Visit):
        if signed_in:
            v.sign_in()
        return v.open(path, status)
    scenario(name)(visit_page)


def sent(name: str, path: str, field: str, values: dict, signed_in=False, status=400) -> None:
    """The page answering the form of ``path`` (the form holding ``field``, or posting to
    it when ``field`` is a path) sent with ``values``."""
    def send_form(v: Visit):
        if signed_in:
            v.sign_in()
        return v.send(v.open(path), field, values, status=status)
    scenario(name)(send_form)


# -- pages reached by a simple GET ----------------------------------------------------------
page("accueil", "/")
page("conditions générales", "/conditions-generales")
page("connexion", "/login")
page("inscription", "/inscription")
page("mot de passe perdu : situation", "/mot-de-passe-perdu")
page("page introuvable (404)", "/nexiste-pas", status=404)
page("flux expiré (mot de passe perdu)", f"/mot-de-passe-perdu/code?flow={uuid.uuid4()}",
     status=400)
page("demande d'autorisation invalide", "/authorize?client_id=inconnu&response_type=code",
     status=400)
page("mon compte : profil", "/compte/", signed_in=True)
page("mon compte : modifier le profil", "/compte/profil", signed_in=True)
page("mon compte : téléphone", "/compte/contact/telephone", signed_in=True)
page("mon compte : courriel de contact", "/compte/contact/courriel", signed_in=True)
page("mon compte : sécurité", "/compte/securite", signed_in=True)
page("mon compte : mot de passe", "/compte/securite/mot-de-passe", signed_in=True)
page("mon compte : adresse de connexion", "/compte/securite/identifiant", signed_in=True)
page("mon compte : préférences", "/compte/preferences", signed_in=True)
page("mon compte : relations", "/compte/relations", signed_in=True)
page("mon compte : ajouter une personne", "/compte/relations/personne/ajouter", signed_in=True)
page("mon compte : ajouter un organisme", "/compte/relations/organisme/ajouter",
     signed_in=True)
page("mon compte : applications", "/compte/applications", signed_in=True)
page("mon compte : confidentialité", "/compte/confidentialite", signed_in=True)
page("mon compte : supprimer le compte", "/compte/supprimer", signed_in=True)
page("mon compte : double authentification", "/compte/mfa/", signed_in=True)
page("mon compte : mes demandes (aucune)", "/compte/demandes", signed_in=True)
page("mon compte : notifications (aucune)", "/compte/notifications", signed_in=True)
page("mon compte : porte-documents (vide)", "/compte/porte-documents", signed_in=True)
page("mon compte : abonnements (aucun thème)", "/compte/abonnements", signed_in=True)
page("mon compte : nouvelle démarche en ligne", "/compte/demarches/nouvelle", signed_in=True)
page("désabonnement : lien invalide", "/compte/abonnements/desabonner/invalide", status=404)
page("confirmer son identité", "/login/reauth?return_to=/compte/securite", signed_in=True)
page("déconnexion : confirmation", "/logout", signed_in=True)


# -- forms sent back with errors (and a few sent right) ---------------------------------------
REGISTRATION = {"email": "jeanne.martin@example.org", "given_name": "Jeanne",
                "family_name": "Martin", "phone": "06 12 34 56 78", "password": STRONG_PASSWORD,
                "password_confirm": STRONG_PASSWORD, "accept_terms": "y", **CAPTCHA_OK}
sent("connexion : champs vides", "/login", "email", {"email": "", "password": ""})
sent("inscription : erreurs", "/inscription", "given_name",
     {"email": "pas-une-adresse", "password": "court", "password_confirm": "autre",
      "accept_terms": None})
sent("inscription : message envoyé", "/inscription", "given_name", REGISTRATION, status=200)
sent("mot de passe perdu : situation non choisie", "/mot-de-passe-perdu",
     "/mot-de-passe-perdu?", {})
sent("mon compte : modifier le profil, erreurs", "/compte/profil", "family_name",
     {"family_name": "", "birthdate": "31/02/1990"}, signed_in=True)
sent("mon compte : téléphone, erreurs", "/compte/contact/telephone", "phone",
     {"phone": "pas un numéro"}, signed_in=True)
sent("mon compte : téléphone, code", "/compte/contact/telephone", "phone",
     {"phone": "06 12 34 56 78", **CAPTCHA_OK}, signed_in=True, status=200)
sent("mon compte : mot de passe, erreurs", "/compte/securite/mot-de-passe", "current_password",
     {"current_password": "", "new_password": "court", "confirm_password": "autre"},
     signed_in=True)
sent("mon compte : adresse de connexion, erreurs", "/compte/securite/identifiant", "new_email",
     {"new_email": "pas-une-adresse"}, signed_in=True)
sent("mon compte : préférences, erreurs", "/compte/preferences", "/compte/preferences",
     {"locale": "xx", "preferred_contact": "pigeon"}, signed_in=True)
sent("mon compte : ajouter une personne, erreurs", "/compte/relations/personne/ajouter",
     "family_name", {"family_name": "", "birthdate": "demain"}, signed_in=True)
sent("mon compte : ajouter un organisme, erreurs", "/compte/relations/organisme/ajouter",
     "organisation_name", {"organisation_name": "", "identifier_type": None, "identifier": "12"},
     signed_in=True)
sent("mon compte : porte-documents, erreurs", "/compte/porte-documents", "name",
    {"name": "", "document_date": "31/02/2026"}, signed_in=True)
sent("mon compte : supprimer le compte, erreur", "/compte/supprimer", "/compte/supprimer", {},
     signed_in=True)


# -- pages in a given state -------------------------------------------------------------------
def _hub_data(v) -> tuple[str, str]:
    """A démarche app that filed a request for the signed-in user, with a message and a
    notification, the themes, and a document in the wallet; (request id, client id)."""
    import datetime as dt

    from idp.admin.clients import create_client
    from idp.hub.context import wallet_store
    from idp.hub.wallet import add_document
    from idp.hub import notifications, requests as hub_requests
    from idp.hub.subscriptions import ensure_default_themes
    from idp.persistence.models import User

    with v.app.app_context():
        db = v.svc.db.session
        client, _secret = create_client(db, name="Aide au logement",
                                        redirect_uris=["https://logement.example.org/cb"],
                                        scopes=["openid", "requests:write"])
        user = db.get(User, v.user.id)
        item = hub_requests.create_request(db, client, user, user.id, {
            "number": "AL-2026-00042", "title": "Demande d'aide au logement",
            "service": "Direction de l'habitat", "expected_days": 30,
            "link": "https://logement.example.org/dossiers/42"})
        hub_requests.update_request(db, client, item, {"status": "awaiting_citizen",
                                                       "comment": "Il manque un justificatif."})
        hub_requests.add_message(db, item, "service", "Merci d'envoyer votre avis d'imposition.")
        notifications.create_notification(db, v.svc.kv, v.svc.settings, client, user, {
            "category": "requests", "title": "Votre demande AL-2026-00042 avance",
            "body": "Elle est en attente de compléments.", "link": ""})
        ensure_default_themes(db)
        add_document(db, wallet_store(v.svc), user, name="Quittance de mars",
                     document_date=dt.date(2026, 3, 31), data=b"%PDF-1.4 x",
                     max_bytes=1024, max_documents=5)
        db.commit()
        return item.id, client.client_id


@scenario("mon compte : mes demandes")
def _(v):
    v.sign_in()
    _hub_data(v)
    return v.open("/compte/demandes")


@scenario("mon compte : mes demandes, détail")
def _(v):
    v.sign_in()
    request_id, _client = _hub_data(v)
    return v.open(f"/compte/demandes/{request_id}")


@scenario("mon compte : mes demandes, réponse vide")
def _(v):
    v.sign_in()
    request_id, _client = _hub_data(v)
    page_ = v.open(f"/compte/demandes/{request_id}")
    return v.follow(v.browser.post(f"/compte/demandes/{request_id}", data={
        "csrf_token": csrf_token(page_.data), "body": ""}), status=400)


@scenario("mon compte : accueil avec demandes")
def _(v):
    v.sign_in()
    _hub_data(v)
    return v.open("/compte/")


@scenario("mon compte : notifications")
def _(v):
    v.sign_in()
    _hub_data(v)
    return v.open("/compte/notifications")


@scenario("mon compte : porte-documents")
def _(v):
    v.sign_in()
    _hub_data(v)
    return v.open("/compte/porte-documents")


@scenario("mon compte : abonnements")
def _(v):
    v.sign_in()
    _hub_data(v)
    return v.open("/compte/abonnements")


@scenario("porte-documents : transmettre à une démarche")
def _(v):
    v.sign_in()
    _request, client_id = _hub_data(v)
    return v.open("/compte/porte-documents/choisir?client_id=" + client_id +
                  "&redirect_uri=https://logement.example.org/cb&state=s&purpose=Justificatif")


@scenario("connexion : mauvais mot de passe")
def _(v):
    return v.send(v.open("/login"), "email", {"email": v.user.email, "password": "pas le bon"},
                  status=None)


@scenario("consentement")
def _(v):
    client = v.client_factory(require_consent=True)
    v.sign_in()
    response, _verifier, _query = v.browser.authorize(client)
    return v.follow(response)


@scenario("inscription : confirmer l'adresse")
def _(v):
    PAGES["inscription : message envoyé"](v)
    link = re.search(r"https?://\S+", v.outbox("jeanne.martin@example.org")[-1]["text"])
    return v.open(link.group(0))


@scenario("inscription : confirmer l'adresse, erreur")
def _(v):
    return v.send(v.open("/inscription/confirmer"), "code", {"code": ""}, status=400,
                  button=("confirm_email", "1"))


@scenario("connexion : adresse non confirmée")
def _(v):
    PAGES["inscription : message envoyé"](v)
    return v.send(v.open("/login"), "email", {"email": "jeanne.martin@example.org",
                                             "password": STRONG_PASSWORD}, status=403)


def _recovery(v, population="usager"):
    return v.send(v.open("/mot-de-passe-perdu"), "/mot-de-passe-perdu?",
                  {"population": population})


def _recovery_code_page(v):
    return v.send(_recovery(v), "email", {"email": v.user.email, **CAPTCHA_OK})


scenario("mot de passe perdu : adresse")(_recovery)
scenario("mot de passe perdu : code")(_recovery_code_page)


@scenario("mot de passe perdu : agent")
def _(v):
    return _recovery(v, "agent_lycee")


@scenario("mot de passe perdu : assistance")
def _(v):
    return _recovery(v, "assistance")


@scenario("mot de passe perdu : adresse, erreurs")
def _(v):
    return v.send(_recovery(v), "email", {"email": "", "captcha_payload": None}, status=400)


@scenario("mot de passe perdu : mauvais code")
def _(v):
    return v.send(_recovery_code_page(v), "code", {"code": "AAAAAA"}, status=400)


def _recovery_password_page(v):
    page_ = _recovery_code_page(v)
    code = RECOVERY_CODE_RE.search(v.outbox(v.user.email)[-1]["text"]).group(0)
    return v.send(page_, "code", {"code": code})


scenario("mot de passe perdu : nouveau mot de passe")(_recovery_password_page)


@scenario("mot de passe perdu : nouveau mot de passe, erreurs")
def _(v):
    return v.send(_recovery_password_page(v), "password",
                  {"password": "court", "password_confirm": "autre"}, status=400)


@scenario("mot de passe perdu : terminé")
def _(v):
    return v.send(_recovery_password_page(v), "password",
                  {"password": STRONG_PASSWORD, "password_confirm": STRONG_PASSWORD})


def _mfa_challenge(v):
    user, _totp = v.with_totp()
    return v.follow(v.browser.login(user.email))


scenario("double authentification : code")(_mfa_challenge)


@scenario("double authentification : mauvais code")
def _(v):
    return v.send(_mfa_challenge(v), "code", {"code": "abc"}, status=400)


@scenario("double authentification : code de secours")
def _(v):
    challenge = _mfa_challenge(v)
    flow = re.search(r"flow=([0-9a-f-]{36})", challenge.data.decode()).group(1)
    page_ = v.open(f"/login/mfa/secours?flow={flow}")
    return page_


@scenario("double authentification : code de secours, erreur")
def _(v):
    page_ = PAGES["double authentification : code de secours"](v)
    return v.send(page_, "code", {"code": ""}, status=400)


@scenario("mon compte : double authentification, code envoyé à l'adresse")
def _(v):
    v.sign_in()
    return v.send(v.open("/compte/mfa/activer"), "send", button=("send", "1"))


@scenario("mon compte : double authentification, mauvais code de l'adresse")
def _(v):
    page_ = PAGES["mon compte : double authentification, code envoyé à l'adresse"](v)
    return v.send(page_, "code", {"code": "000000x"}, status=400)


def _enrol_page(v):
    page_ = PAGES["mon compte : double authentification, code envoyé à l'adresse"](v)
    code = re.search(r"\b(\d{6})\b", v.outbox(v.user.email)[-1]["text"]).group(1)
    return v.send(page_, "code", {"code": code})


scenario("mon compte : activer la double authentification")(_enrol_page)


@scenario("mon compte : activer la double authentification, mauvais code")
def _(v):
    return v.send(_enrol_page(v), "code", {"code": "000000x"}, status=400)


@scenario("mon compte : codes de secours")
def _(v):
    page_ = _enrol_page(v)
    secret = TOTP_KEY_RE.search(page_.data.decode()).group(1).replace(" ", "")
    return v.send(page_, "code", {"code": pyotp.TOTP(secret).now()})


@scenario("double authentification : application perdue")
def _(v):
    challenge = _mfa_challenge(v)
    flow = re.search(r"flow=([0-9a-f-]{36})", challenge.data.decode()).group(1)
    return v.open(f"/login/mfa/perdu?flow={flow}")


def with_second_factor(name: str, path: str) -> None:
    """A page of a user signed in with an authenticator application."""
    def visit_page(v: Visit):
        user, totp = v.with_totp()
        v.send(v.follow(v.browser.login(user.email)), "code", {"code": totp.now()})
        return v.open(path)
    scenario(name)(visit_page)


with_second_factor("mon compte : désactiver la double authentification", "/compte/mfa/desactiver")
with_second_factor("mon compte : nouveaux codes de secours", "/compte/mfa/codes-de-secours")
with_second_factor("mon compte : changer d'application", "/compte/mfa/activer")


@scenario("conditions d'utilisation à accepter")
def _(v):
    old = v.user_factory(email="ancien@example.org", terms_version="0")
    return v.follow(v.browser.login(old.email))


@scenario("conditions d'utilisation à accepter : erreur")
def _(v):
    page_ = PAGES["conditions d'utilisation à accepter"](v)
    return v.send(page_, "/conditions-generales/accepter", {}, status=400)


@scenario("mon compte : téléphone, mauvais code")
def _(v):
    page_ = PAGES["mon compte : téléphone, code"](v)
    return v.send(page_, "code", {"code": "1"}, status=400)


@scenario("mon compte : applications utilisées")
def _(v):
    client = v.client_factory(require_consent=True, name="Inscription à la cantine")
    v.sign_in()
    response, _verifier, _query = v.browser.authorize(client)
    v.browser.follow_to_client(response, v.user.email)
    return v.open("/compte/applications")


@scenario("déconnecté")
def _(v):
    v.sign_in()
    return v.send(v.open("/logout"), "/logout", button=("confirm", "yes"))


@scenario("formulaire expiré (CSRF)")
def _(v):
    return v.follow(v.browser.post("/login", data={"email": "a@example.org"}), status=400)


# -- the tests ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PAGES))
def test_page_is_accessible(visit, name):
    response = PAGES[name](visit)
    if re.search(r"erreur|mauvais|vides|non choisie", name):  # the state wanted is shown
        assert b'class="error-summary"' in response.data, response.data[:2000]
    assert_accessible(response.data, name)


@pytest.mark.parametrize("name", ["accueil", "connexion : champs vides", "inscription : erreurs",
                                  "mon compte : profil", "mon compte : préférences, erreurs"])
def test_page_is_accessible_in_english(visit, name):
    visit.open("/conditions-generales?lang=en")
    response = PAGES[name](visit)
    assert next(n for n in parse(response.data).iter() if n.tag == "html").get("lang") == "en"
    assert_accessible(response.data, f"{name} (en)")


def test_keyboard_focus_is_visible_in_the_styles():
    """A visible :focus-visible outline for links, buttons and fields; nothing removes it."""
    from idp.config import PROJECT_ROOT

    sheets = [PROJECT_ROOT / "idp" / "static" / "css" / "app.css",
              *sorted((PROJECT_ROOT / "idp" / "account" / "static").glob("*.css"))]
    css = {path.name: re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S) for path in sheets}
    rules = re.findall(r"([^{}]+)\{([^}]*)\}", css["app.css"])
    focus = [body for selector, body in rules if any(
        part.strip() in (":focus-visible", "*:focus-visible") for part in selector.split(","))]
    assert focus, "no rule for :focus-visible on every element"
    width = re.search(r"outline:\s*(\d+)px\s+solid", focus[0])
    assert width and int(width.group(1)) >= 2, focus[0]
    for name, text in css.items():
        assert not re.search(r"outline(-style)?:\s*(none|0)\b", text), name


# -- the check itself catches what it should ----------------------------------------------
GOOD = """<!doctype html><html lang="fr"><head><title>Erreur : T</title></head><body>
<a href="#contenu">Aller au contenu</a><main id="contenu"><h1>Titre</h1>
<div class="error-summary" role="alert"><a href="#email">Adresse : Saisissez-la.</a></div>
<label for="email">Adresse</label>
<input type="email" id="email" name="email" autocomplete="email" aria-invalid="true"
       aria-describedby="email-erreur"><p class="error-message" id="email-erreur">Saisissez-la.</p>
<fieldset><legend>Choix</legend><input type="radio" id="r1" name="r"><label for="r1">Un</label></fieldset>
<button type="submit">Envoyer</button><img src="x.png" alt=""></main></body></html>"""


def test_the_check_accepts_a_good_page():
    assert problems(GOOD) == []


@pytest.mark.parametrize("change, expected", [
    (('lang="fr"', 'lang="de"'), "<html lang>"),
    (("<h1>Titre</h1>", "<h1>Titre</h1><h1>Bis</h1>"), "<h1>"),
    (('<a href="#contenu">', '<a href="#ailleurs">'), "skip link"),
    (('<label for="email">', '<label for="autre">'), "field without a label"),
    ((' aria-invalid="true"', ""), "aria-invalid"),
    (('id="email-erreur">Saisissez-la.', 'id="email-erreur">Autre chose.'), "does not hold"),
    (('role="alert"', ""), "role=\"alert\""),
    (('href="#email"', 'href="#rien"'), "points at no element"),
    (("<fieldset><legend>Choix</legend>", "<fieldset>"), "fieldset with a legend"),
    (("<main", "<script>alert(1)</script><main"), "inline <script>"),
    (("<h1>", '<h1 style="color:red">'), "style="),
    (("<button", "<button onclick=\"x()\""), "onclick="),
    (("Envoyer</button>", "</button>"), "button without text"),
    (('alt=""', ""), "without alt"),
    ((' autocomplete="email"', ""), "autocomplete"),
    (('id="r1"', 'id="email"'), "used twice"),
    (("Erreur : T", "T"), "title does not begin"),
])
def test_the_check_finds_each_problem(change, expected):
    html = GOOD.replace(*change)
    assert html != GOOD
    found = problems(html)
    assert any(expected in p for p in found), found

"""The citizen's journeys in a real browser, each at desktop width with JavaScript, without
JavaScript, and at 360 px (the ``visit`` fixture's variants). Every page is checked by
axe-core and photographed (conftest.Visit.check)."""

from __future__ import annotations

import re
import time
import uuid

import pyotp

import pytest

from tests.browser.conftest import make_user
from tests.browser.demarche import DEMARCHE, DemarcheApp
from tests.browser.steps import (STRONG_PASSWORD, captcha, code_in, consent, fragment_code,
                                 link_code_in, link_in, sign_in)

pytestmark = pytest.mark.browser


def unique_email(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}@example.org"


def test_registration_from_the_demarche_app(stack, visit):
    page = visit.page
    app = DemarcheApp(page, stack.apps[0])
    email = unique_email("nouvel.usager")
    app.open()
    visit.check("démarche : accueil")
    app.start_sign_in()
    visit.check("connexion")
    page.get_by_role("link", name=re.compile("Créer un compte")).click()
    visit.check("inscription")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Prénom").fill("Léa")
    page.get_by_label(re.compile(r"^Nom")).fill("Wamytan")
    page.get_by_label("Numéro de téléphone").fill("06 12 34 56 78")
    page.get_by_label(re.compile(r"^Mot de passe")).fill(STRONG_PASSWORD)
    page.get_by_label("Confirmation du mot de passe").fill(STRONG_PASSWORD)
    captcha(visit)
    page.get_by_label(re.compile("J'ai lu et j'accepte")).check()
    page.get_by_role("button", name="Créer mon compte").click()
    page.get_by_role("heading", name="Vérifiez votre messagerie").wait_for()
    visit.check("inscription : vérifiez votre messagerie")

    # "Continuer" leads to the login page; nobody is signed in before the address is
    # confirmed: the right password gets a page asking for the confirmation.
    page.get_by_role("button", name="Continuer").click()
    page.get_by_label("Adresse e-mail").wait_for()
    visit.check("connexion après l'inscription")
    sign_in(visit, email, STRONG_PASSWORD)
    page.get_by_role("heading", name="Confirmez votre adresse e-mail").wait_for()
    visit.check("connexion : adresse pas encore confirmée")
    assert page.get_by_role("button", name="Renvoyer le message").count()

    # The confirmation link, opened from the mailbox in another tab of the same browser:
    # its code follows the "#" (filled in by the page, typed without JavaScript).
    message = stack.last_message(email)
    code = link_code_in(message)
    link = link_in(message, "/inscription/confirmer")
    assert link.endswith("/inscription/confirmer#code=" + code), link
    mailbox = page.context.new_page()
    mailbox.goto(link)
    fragment_code(visit, mailbox, "Code de confirmation", code)
    visit.check("inscription : confirmer l'adresse", mailbox)
    mailbox.get_by_role("button", name="Confirmer mon adresse e-mail").click()

    # Confirmed in the browser that registered: signed in, on to the démarche.
    mailbox.get_by_role("button", name="Autoriser").wait_for()
    consent(visit, mailbox)
    mailbox.wait_for_url(stack.apps[0] + "/**")
    visit.check("démarche : accueil, connecté", mailbox)
    back = DemarcheApp(mailbox, stack.apps[0])
    back.open_demarche()
    visit.check("démarche : présentation", mailbox)
    back.start_demarche()
    back.assert_signed_in_as("Léa", "Wamytan")
    visit.check("démarche : formulaire prérempli", mailbox)


def test_sign_in_then_single_sign_on_then_logout(stack, visit):
    page = visit.page
    email = unique_email("sso")
    make_user(stack, email, STRONG_PASSWORD, given_name="Jean", family_name="Dupond")
    first, second = DemarcheApp(page, stack.apps[0]), DemarcheApp(page, stack.apps[1])
    first.open()
    visit.check("démarche 1 : accueil")
    first.start_sign_in()
    visit.check("connexion")
    sign_in(visit, email, STRONG_PASSWORD)
    consent(visit)
    page.wait_for_url(stack.apps[0] + "/**")
    visit.check("démarche 1 : accueil, connecté")
    first.open_demarche()
    visit.check("démarche 1 : présentation")
    first.start_demarche()
    first.assert_signed_in_as("Jean", "Dupond")
    visit.check("démarche 1 : formulaire prérempli")

    # The second démarche: no password asked again.
    second.open()
    visit.check("démarche 2 : accueil")
    second.start_sign_in()
    page.wait_for_load_state("load")
    assert page.get_by_label("Mot de passe").count() == 0, "signed in again: no SSO"
    consent(visit)
    page.wait_for_url(stack.apps[1] + "/**")
    visit.check("démarche 2 : accueil, connecté")
    second.open_demarche()
    visit.check("démarche 2 : présentation")
    second.start_demarche()
    second.assert_signed_in_as("Jean", "Dupond")
    visit.check("démarche 2 : formulaire prérempli")

    second.sign_out()
    page.wait_for_load_state("load")
    if page.get_by_role("button", name=re.compile("Se déconnecter|Me déconnecter")).count():
        visit.check("déconnexion : confirmation")
        page.get_by_role("button", name=re.compile("Se déconnecter|Me déconnecter")).first.click()
    page.wait_for_url(stack.apps[1] + "/**")
    visit.check("démarche 2 : déconnecté")
    # Signed out of the provider too: signing in to the first démarche asks again.
    page.goto(stack.issuer + "/compte/")
    page.get_by_label("Mot de passe").wait_for()
    visit.check("connexion après déconnexion")


def _sign_in_to_account(stack, visit, email, password):
    page = visit.page
    page.goto(stack.issuer + "/compte/")
    visit.check("connexion à Mon compte")
    sign_in(visit, email, password)
    page.wait_for_url(stack.issuer + "/compte/**")


def test_contact_change_with_a_code(stack, visit):
    page = visit.page
    email = unique_email("contact")
    make_user(stack, email, STRONG_PASSWORD, given_name="Marie", family_name="Gope")
    _sign_in_to_account(stack, visit, email, STRONG_PASSWORD)
    visit.check("mon compte : profil")
    page.get_by_role("link", name="Ajouter un numéro de téléphone").click()
    visit.check("mon compte : téléphone")
    digits = f"12{uuid.uuid4().int % 10**6:06d}"  # 06 12 …: an assigned range
    national = "06 " + " ".join(digits[i:i + 2] for i in range(0, 8, 2))
    page.get_by_label("Nouveau numéro de téléphone").fill(national)
    captcha(visit)
    page.get_by_role("button", name="Envoyer le code de validation").click()
    page.get_by_label(re.compile("Code de validation")).wait_for()
    visit.check("mon compte : code reçu par SMS")
    # A wrong code first: the error is announced and the field says why.
    page.get_by_label(re.compile("Code de validation")).fill("000000")
    page.get_by_role("button", name="Valider").click()
    page.locator(".error-summary").wait_for()
    # The error summary has the focus (its links lead to the fields), with or without JS.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'erreurs'",
                           timeout=5_000)
    visit.check("mon compte : mauvais code")
    code = code_in(stack.last_message("+336" + digits, kind="sms"))
    page.get_by_label(re.compile("Code de validation")).fill(code)
    page.get_by_role("button", name="Valider").click()
    page.wait_for_url(stack.issuer + "/compte/")
    visit.check("mon compte : téléphone vérifié")
    assert national[3:] in page.locator("main").inner_text()
    # "Modifier" and "Supprimer" side by side, or both full width on a phone.
    edit = page.get_by_role("link", name="Modifier le numéro de téléphone").bounding_box()
    remove = page.get_by_role("button", name="Supprimer le numéro de téléphone").bounding_box()
    assert abs(edit["width"] - remove["width"]) < 2 or visit.width > 480, (edit, remove)
    # Signed in, the language link stays on the right of the header, beside the account.
    english = page.get_by_role("link", name="English").bounding_box()
    assert english["x"] > visit.width / 2 or visit.width <= 480, english

    # The legal pages, from the footer.
    for name in ("Mentions légales", "Données personnelles", "Cookies"):
        page.locator("footer").get_by_role("link", name=name).click()
        page.get_by_role("heading", level=1, name=name).wait_for()
        visit.check(f"pages légales : {name}")


POPULATIONS = [("Usager des services", "usager"), ("Élu", "elu"),
               ("Agent des lycées", None), ("Agent du siège", None),
               ("Besoin d'assistance", None)]


def test_lost_password_for_each_population(stack, visit):
    page = visit.page
    for label, population in POPULATIONS:
        page.goto(stack.issuer + "/login")
        visit.check("connexion")
        page.get_by_role("link", name="Mot de passe perdu").click()
        visit.check("mot de passe perdu : situation")
        page.get_by_label(label, exact=True).check()
        page.get_by_role("button", name="Continuer").click()
        page.wait_for_load_state("load")
        if population is None:
            heading = page.get_by_role("heading", level=1).inner_text()
            visit.check(f"mot de passe perdu : {label}")
            if label.startswith("Agent"):
                assert page.get_by_role("link", name=re.compile("annuaire des agents")).count()
            else:
                assert heading == "Besoin d'assistance"
                assert page.get_by_role("link", name="assistance@example.org").count()
            continue
        email = unique_email(f"perdu.{population}")
        make_user(stack, email, "ancien mot de passe oublié", population=population,
                  given_name="Paul", family_name="Néaoutyine")
        visit.check(f"mot de passe perdu : adresse ({label})")
        page.get_by_label("Adresse e-mail").fill(email)
        captcha(visit)
        page.get_by_role("button", name="Recevoir un code").click()
        page.get_by_label(re.compile("Code de sécurité")).wait_for()
        visit.check(f"mot de passe perdu : code ({label})")
        page.get_by_label(re.compile("Code de sécurité")).fill(code_in(stack.last_message(email)))
        page.get_by_role("button", name="Valider le code").click()
        page.get_by_label("Nouveau mot de passe", exact=False).first.wait_for()
        visit.check(f"mot de passe perdu : nouveau mot de passe ({label})")
        new_password = f"{STRONG_PASSWORD} et {len(population)} parapluies"
        page.get_by_label(re.compile("^Nouveau mot de passe")).fill(new_password)
        page.get_by_label(re.compile("^Confirmation du nouveau")).fill(new_password)
        page.get_by_role("button", name="Enregistrer le nouveau mot de passe").click()
        page.wait_for_url(re.compile("/mot-de-passe-perdu/termine"))
        visit.check(f"mot de passe perdu : terminé ({label})")
        # The notice was sent by the request that changed the password.
        assert stack.last_message(email)["subject"] == "Votre mot de passe a été modifié"
        page.get_by_role("link", name="Continuer").click()
        page.get_by_label("Adresse e-mail").wait_for()
        visit.check(f"connexion avec le nouveau mot de passe ({label})")
        sign_in(visit, email, new_password)
        page.wait_for_load_state("load")
        if population == "elu":  # an elected member must set up a second factor first,
            # once a code sent to the login address is typed
            page.get_by_role("heading", name="Confirmer votre adresse e-mail").wait_for()
            assert "la double authentification est obligatoire" in \
                page.locator("main").inner_text()
            visit.check("double authentification requise")
        else:
            page.wait_for_url(stack.issuer + "/compte/**")
            visit.check("mon compte après réinitialisation")
        page.context.clear_cookies()


def test_mfa_enrolment_then_login_with_a_totp_code(stack, visit):
    page = visit.page
    email = unique_email("mfa")
    make_user(stack, email, STRONG_PASSWORD, given_name="Sonia", family_name="Backès")
    _sign_in_to_account(stack, visit, email, STRONG_PASSWORD)
    visit.check("mon compte")
    page.goto(stack.issuer + "/compte/mfa/")
    visit.check("double authentification : gérer")
    page.get_by_role("link", name="Activer la double authentification").click()
    # The password is not enough: first a code sent to the login address.
    page.get_by_role("heading", name="Confirmer votre adresse e-mail").wait_for()
    visit.check("double authentification : confirmer l'adresse")
    page.get_by_role("button", name="Recevoir un code par e-mail").click()
    page.get_by_label("Code reçu par e-mail").wait_for()
    visit.check("double authentification : code envoyé à l'adresse")
    page.get_by_label("Code reçu par e-mail").fill(code_in(stack.last_message(email)))
    page.get_by_role("button", name="Valider").click()
    page.locator("#cle-totp").wait_for()
    visit.check("double authentification : activer")
    totp = pyotp.TOTP(page.locator("#cle-totp").inner_text().replace(" ", ""))
    page.get_by_label(re.compile("Code")).first.fill(totp.now())
    page.get_by_role("button", name="Activer").click()
    page.locator(".recovery-codes").wait_for()
    visit.check("double authentification : codes de secours")
    page.get_by_role("link", name=re.compile("J'ai noté mes codes")).click()
    page.wait_for_load_state("load")
    visit.check("après l'activation")
    page.context.clear_cookies()

    _sign_in_to_account_with_totp(stack, visit, email, totp)


def _sign_in_to_account_with_totp(stack, visit, email, totp):
    page = visit.page
    page.goto(stack.issuer + "/compte/")
    visit.check("connexion")
    sign_in(visit, email, STRONG_PASSWORD)
    page.wait_for_url(re.compile("/login/mfa"))
    visit.check("double authentification : code demandé")
    # The code just used to enrol cannot be used again: the next one.
    page.get_by_label(re.compile("Code")).first.fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Valider").click()
    page.wait_for_url(stack.issuer + "/compte/**")
    visit.check("mon compte après la double authentification")


# -- keyboard only -------------------------------------------------------------------------
def tab_to(page, name: str, max_presses: int = 40) -> None:
    """Press Tab until the focused element's accessible text or label holds ``name``."""
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => {
            const e = document.activeElement;
            if (!e) return "";
            const label = e.labels && e.labels.length ? e.labels[0].innerText : "";
            return (label + " " + (e.innerText || "") + " " + (e.value || "")).trim();
        }""")
        if name.lower() in focused.lower():
            return
    raise AssertionError(f"{name!r} cannot be reached with the Tab key")


def test_keyboard_only_login_and_recovery(stack, visit):
    page = visit.page
    email = unique_email("clavier")
    make_user(stack, email, "ancien mot de passe oublié", given_name="Kim", family_name="Ngo")
    app = DemarcheApp(page, stack.apps[0])
    app.open()
    visit.check("démarche : accueil")
    tab_to(page, "Se connecter avec Compte usager")
    page.keyboard.press("Enter")
    page.get_by_label("Adresse e-mail").wait_for()
    visit.check("connexion")

    # Recovery, keys only.
    tab_to(page, "Mot de passe perdu")
    page.keyboard.press("Enter")
    page.get_by_role("radio").first.wait_for()
    visit.check("mot de passe perdu : situation")
    tab_to(page, "Usager des services")
    page.keyboard.press("Space")
    tab_to(page, "Continuer")
    page.keyboard.press("Enter")
    page.get_by_label("Adresse e-mail").wait_for()
    visit.check("mot de passe perdu : adresse")
    tab_to(page, "Adresse e-mail")
    page.keyboard.type(email)
    if not visit.javascript:
        tab_to(page, "Combien" if "Combien" in page.locator("label[for=captcha_answer]")
               .inner_text() else "Quel")
        captcha(visit)
    tab_to(page, "Recevoir un code")
    page.keyboard.press("Enter")
    page.get_by_label(re.compile("Code de sécurité")).wait_for()
    visit.check("mot de passe perdu : code")
    tab_to(page, "Code de sécurité")
    page.keyboard.type(code_in(stack.last_message(email)))
    page.keyboard.press("Enter")
    page.get_by_label(re.compile("^Nouveau mot de passe")).wait_for()
    visit.check("mot de passe perdu : nouveau mot de passe")
    tab_to(page, "Nouveau mot de passe")
    page.keyboard.type(STRONG_PASSWORD)
    tab_to(page, "Confirmation")
    page.keyboard.type(STRONG_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("/mot-de-passe-perdu/termine"))
    visit.check("mot de passe perdu : terminé")
    tab_to(page, "Continuer")
    page.keyboard.press("Enter")

    # Login, keys only, back to the démarche.
    page.get_by_label("Adresse e-mail").wait_for()
    visit.check("connexion avec le nouveau mot de passe")
    tab_to(page, "Adresse e-mail")
    page.keyboard.type(email)
    tab_to(page, "Mot de passe")
    page.keyboard.type(STRONG_PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Autoriser").wait_for()
    visit.check("consentement")
    tab_to(page, "Autoriser")
    page.keyboard.press("Enter")
    page.wait_for_url(stack.apps[0] + "/**")
    visit.check("démarche : accueil, connecté")
    # On to the démarche's form, keys only too.
    tab_to(page, DEMARCHE)
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name=DEMARCHE).wait_for()
    visit.check("démarche : présentation")
    tab_to(page, "Commencer ma demande")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dossiers/"))
    app.assert_signed_in_as("Kim", "Ngo")
    visit.check("démarche : formulaire prérempli")

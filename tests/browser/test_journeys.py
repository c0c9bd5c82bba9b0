"""The citizen's journeys in a real browser, each at desktop width with JavaScript, without
JavaScript, and at 360 px (the ``visit`` fixture's variants). Every page is checked by
axe-core and photographed (conftest.Visit.check)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.browser.conftest import make_user
from tests.browser.demarche import DemarcheApp
from tests.browser.steps import STRONG_PASSWORD, captcha, consent, link_in, sign_in

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

    # The confirmation link, opened from the mailbox in another tab of the same browser.
    message = stack.last_message(email)
    mailbox = page.context.new_page()
    mailbox.goto(link_in(message, "/inscription/confirmer/"))
    visit.check("inscription : confirmer l'adresse", mailbox)
    mailbox.get_by_role("button", name=re.compile("Confirmer")).click()
    mailbox.get_by_role("heading", name="Adresse e-mail confirmée").wait_for()
    visit.check("inscription : adresse confirmée", mailbox)
    mailbox.close()

    page.get_by_role("button", name="Continuer").click()
    consent(visit)
    page.wait_for_url(stack.apps[0] + "/**")
    app.assert_signed_in_as("Léa", "Wamytan")
    visit.check("démarche : formulaire prérempli")


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
    second.assert_signed_in_as("Jean", "Dupond")
    visit.check("démarche 2 : formulaire prérempli")

    second.sign_out()
    page.wait_for_load_state("load")
    if page.get_by_role("button", name=re.compile("Se déconnecter|Me déconnecter")).count():
        visit.check("déconnexion : confirmation")
        page.get_by_role("button", name=re.compile("Se déconnecter|Me déconnecter")).first.click()
    page.wait_for_url(stack.apps[1] + "/**")
    visit.check("démarche 2 : déconnecté")
    # Signed out of the provider too: the first démarche asks for the password again.
    first.open()
    page.wait_for_load_state("load")
    if not first.is_here() or page.get_by_role("button", name=re.compile("Se déconnecter")).count():
        pass
    page.goto(stack.issuer + "/compte/")
    page.get_by_label("Mot de passe").wait_for()
    visit.check("connexion après déconnexion")

"""What the journeys need of a démarche app, in one place (a page object).

A journey depends only on what any démarche app has: a "Se connecter avec Compte usager"
button or link on its home page, a démarche to open and start once back signed in, whose
form is prefilled with the citizen's name, and a way to sign out. Adapt the selectors here
when the app changes.
"""

from __future__ import annotations

import re

SIGN_IN = re.compile(r"Se connecter avec Compte usager")
SIGN_OUT = re.compile(r"Se déconnecter")
# A démarche of the home page's list (under its heading, apart from the citizen's own
# dossiers), and the button of its page that starts a dossier.
OFFERED = re.compile(r"démarches proposées")
DEMARCHE = "Demande d'aide au logement"
START = re.compile(r"Commencer ma demande")


class DemarcheApp:
    def __init__(self, page, base_url: str) -> None:
        self.page, self.base_url = page, base_url

    def open(self) -> None:
        self.page.goto(self.base_url + "/")

    def sign_in_control(self):
        """The home page's "Se connecter avec Compte usager" (a link or a button)."""
        return self.page.get_by_role("link", name=SIGN_IN).or_(
            self.page.get_by_role("button", name=SIGN_IN)).first

    def start_sign_in(self) -> None:
        self.sign_in_control().click()

    def open_demarche(self) -> None:
        """From the home page, the démarche's page."""
        offered = self.page.locator("section, .card, main").filter(
            has=self.page.get_by_role("heading", name=OFFERED)).last
        offered.get_by_role("link", name=DEMARCHE, exact=True).click()
        self.page.get_by_role("heading", level=1, name=DEMARCHE).wait_for()

    def start_demarche(self) -> None:
        """From the démarche's page, its form (a new dossier)."""
        self.page.get_by_role("button", name=START).click()
        self.page.wait_for_url(re.compile(r"/dossiers/"))

    def is_here(self) -> bool:
        return self.page.url.startswith(self.base_url)

    def prefilled_values(self) -> list[str]:
        """The values of the form's text fields (the démarche's prefilled form)."""
        return self.page.locator(
            "form input[type=text], form input:not([type]), form input[type=email]"
        ).evaluate_all("fields => fields.map(f => f.value)")

    def assert_signed_in_as(self, given_name: str, family_name: str) -> None:
        assert self.is_here(), f"not back in the démarche app: {self.page.url}"
        values = self.prefilled_values()
        assert family_name in values and given_name in values, \
            f"the form is not prefilled with {given_name} {family_name}: {values}"

    def sign_out(self) -> None:
        self.page.get_by_role("button", name=SIGN_OUT).or_(
            self.page.get_by_role("link", name=SIGN_OUT)).first.click()

"""What a page says differently from one territory to another: the organisation's name in
a sentence ("de la Province Sud", "du Département"), the phone numbers' region.

``organisation_name`` is configured with its article ("la Province Sud", "le Département",
"l'Agglomération", "les Îles Loyauté"), so that every sentence can use it.
"""

from __future__ import annotations

import phonenumbers
from flask_babel import get_locale
from flask_babel import gettext as _

from ..config import Settings
from ..i18n import of_name, sentence_start, to_name, without_article

def example_number(region: str) -> str:
    """A mobile number of the region as its people write it ("71 22 33" style)."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return ""
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    return " ".join(national.replace(".", " ").split())


def phone_hint(region: str) -> str:
    """How to type a number, for the service's region: its own numbers as they are, others
    with their country code (New Caledonia is France, but has its own: +687)."""
    region = (region or "FR").upper()
    local = example_number(region)
    if region == "FR":
        return _("Par exemple %(example)s. Pour un numéro hors de métropole, commencez par "
                 "l'indicatif : +687 pour la Nouvelle-Calédonie, +262 pour La Réunion...",
                 example=local)
    code = phonenumbers.country_code_for_region(region)
    return _("Par exemple %(example)s. Pour un autre numéro (métropole, autre territoire, "
             "étranger), commencez par l'indicatif : +33 pour la métropole, par exemple "
             "+33 6 12 34 56 78. Ce service est configuré pour les numéros en +%(code)s.",
             example=local, code=code)


def template_globals(settings: Settings) -> dict:
    name = settings.organisation_name

    def organisation_of() -> str:
        """"de la Province Sud"; in English "of Province Sud"."""
        if str(get_locale() or "fr").startswith("en"):
            return "of " + without_article(name)
        return of_name(name)

    return {
        "organisation_of": organisation_of,
        "organisation_to": lambda: to_name(name),
        "organisation_title": lambda: sentence_start(name),
        "phone_hint": lambda: phone_hint(settings.messaging.default_region),
    }

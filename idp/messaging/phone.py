"""Phone numbers: parse what people type into E.164, and show it back.

Overseas territories have their own region codes (``NC`` for New Caledonia,
+687; ``PF`` for French Polynesia, +689; ``GP``, ``RE``, ``YT``...): with
``default_region="NC"``, "99 99 99" becomes "+687999999".
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from idp.i18n import N_

# Longer input is not a phone number, and is not worth parsing.
MAX_INPUT_LENGTH = 40


class InvalidPhone(ValueError):
    """The number cannot be used; ``str(exc)`` is a French message (a msgid) for the form:
    show ``_(str(exc))``."""


def _parse(raw: str, default_region: str | None) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(raw, default_region)
    except NumberParseException as exc:
        raise InvalidPhone(N_(
            "Ce numéro de téléphone n'est pas valide. Vérifiez-le ; s'il n'est pas de la "
            "même région que ce service, commencez par l'indicatif du pays "
            "(par exemple +33 pour la France, +687 pour la Nouvelle-Calédonie).")) from exc


def parse_phone(raw: str, default_region: str) -> str:
    """The number in E.164 (``+33612345678``), or :class:`InvalidPhone`."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone(N_("Saisissez un numéro de téléphone."))
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidPhone(N_("Ce numéro de téléphone est trop long."))
    number = _parse(text, (default_region or "").upper() or None)
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(N_("Ce numéro de téléphone n'a pas le bon nombre de chiffres. "
                              "Vérifiez-le, avec l'indicatif du pays s'il le faut."))
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(N_("Ce numéro de téléphone n'existe pas. Vérifiez-le, avec "
                              "l'indicatif du pays s'il le faut."))
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def format_national(e164: str) -> str:
    """How people of the number's region write it: ``06 12 34 56 78``, ``99.99.99``."""
    return phonenumbers.format_number(_parse(e164, None), PhoneNumberFormat.NATIONAL)


def format_international(e164: str) -> str:
    """``+33 6 12 34 56 78``: for pages read from another region."""
    return phonenumbers.format_number(_parse(e164, None), PhoneNumberFormat.INTERNATIONAL)


def format_for(e164: str, service_region: str) -> str:
    """A number as the service's people read it: their own numbers in the national form
    with spaces ("06 12 34 56 78", "71 22 33" in New Caledonia), others international
    ("+687 71 22 33" in metropolitan France)."""
    number = _parse(e164, None)
    if phonenumbers.region_code_for_number(number) == (service_region or "").upper():
        national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        return " ".join(national.replace(".", " ").split())
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    return " ".join(international.replace(".", " ").split())


def region_of(e164: str) -> str:
    """The ISO region code of a number (``FR``, ``NC``...), "" when unknown."""
    return phonenumbers.region_code_for_number(_parse(e164, None)) or ""


def is_mobile(e164: str) -> bool:
    """True when the number can receive SMS as far as the numbering plan tells."""
    kind = phonenumbers.number_type(_parse(e164, None))
    return kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)

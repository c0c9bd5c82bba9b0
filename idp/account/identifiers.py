"""Identifiers of organisations: SIRET (France) and RIDET (New Caledonia).

Both are typed with spaces, dots or dashes in many ways; they are stored normalised:
a SIRET as its 14 digits, a RIDET as ``1234567.001`` (7 digits of the company, a dot,
the 3 digits of the establishment).
"""

from __future__ import annotations

import re

from ..i18n import N_

_SEPARATORS = re.compile(r"[\s.\-_/]")
# La Poste's establishments share one SIREN whose SIRETs do not follow the Luhn key:
# for them the sum of the digits is a multiple of 5 (INSEE rule).
LA_POSTE_SIREN = "356000000"


class IdentifierError(ValueError):
    """``str(exc)`` is a French message (a msgid) for the form: show ``_(str(exc))``."""


def _digits(raw: str) -> str:
    return _SEPARATORS.sub("", (raw or "").strip())


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def normalize_siret(raw: str) -> str:
    digits = _digits(raw)
    if len(digits) > 40:
        raise IdentifierError(N_("Le numéro SIRET est trop long : il compte 14 chiffres."))
    if not digits.isascii() or not digits.isdigit() or len(digits) != 14:
        raise IdentifierError(N_("Le numéro SIRET compte 14 chiffres, par exemple "
                                 "« 123 456 789 00012 »."))
    if digits.startswith(LA_POSTE_SIREN):
        valid = sum(int(c) for c in digits) % 5 == 0
    else:
        valid = luhn_valid(digits)
    if not valid:
        raise IdentifierError(N_("Ce numéro SIRET n'existe pas : vérifiez les 14 chiffres "
                                 "(sur un avis de situation ou un extrait Kbis, par exemple)."))
    return digits


def normalize_ridet(raw: str) -> str:
    digits = _digits(raw)
    if len(digits) > 40:
        raise IdentifierError(N_("Le numéro RIDET est trop long."))
    if not digits.isascii() or not digits.isdigit() or len(digits) != 10:
        raise IdentifierError(N_("Le numéro RIDET compte 7 chiffres suivis des 3 chiffres de "
                                 "l'établissement, par exemple « 1234567.001 »."))
    return f"{digits[:7]}.{digits[7:]}"


def normalize_identifier(kind: str, raw: str) -> str:
    if kind == "siret":
        return normalize_siret(raw)
    if kind == "ridet":
        return normalize_ridet(raw)
    raise IdentifierError(N_("Choisissez le type de numéro : SIRET ou RIDET."))

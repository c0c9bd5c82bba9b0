"""Password policy: what a new password must satisfy, and how to say it (in the page's
language: French msgids through Flask-Babel, French outside a request).

Follows NIST SP 800-63B (5.1.1.2), CNIL délibération 2022-100 and the ANSSI
recommendations on authentication:

* length is what counts, measured in Unicode code points after NFKC
  normalisation (so that "é" typed as one or two code points counts once);
* every character is allowed (spaces, accents, emoji), nothing is truncated,
  at least 64 characters are always accepted, and there is no composition rule
  ("one upper case, one digit...");
* a password from the shipped list of common or breached passwords is refused,
  and so is one that contains the user's e-mail address, its local part or their
  names (case- and accent-insensitively).

Minimum length:

* ``min_length`` below 8 is a programming or configuration error: ``ValueError``;
* 8 to 11 is only allowed for an account protected by a second factor
  (``mfa_enabled=True``, as the CNIL allows with an additional measure);
* without a second factor the minimum is raised to 12, whatever ``min_length`` says.

See :func:`effective_min_length`.
"""

from __future__ import annotations

import gzip
import threading
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from flask_babel import gettext as _

ABSOLUTE_MIN_LENGTH = 8
MIN_LENGTH_WITHOUT_MFA = 12
# A policy must accept passphrases at least this long (NIST 800-63B).
MIN_ACCEPTED_MAX_LENGTH = 64
# Names and e-mail local parts shorter than this are not looked for in passwords.
MIN_CONTAINED_LENGTH = 3
# Pieces of a compound name or local part ("jean-pierre", "j.dupond") are looked for
# from this length on: three-letter pieces ("the", "abc") would refuse too much.
MIN_TOKEN_LENGTH = 4

COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"

_common: frozenset[str] | None = None
_common_lock = threading.Lock()


def normalise(password: str) -> str:
    """The form a password is measured, hashed and compared in: NFKC."""
    return unicodedata.normalize("NFKC", password)


def _fold(text: str) -> str:
    """Case- and accent-insensitive form, for containment checks."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", stripped).casefold()


def common_passwords() -> frozenset[str]:
    """The shipped list (lower-case, NFKC), loaded once per process."""
    global _common
    if _common is None:
        with _common_lock:
            if _common is None:
                with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as fh:
                    _common = frozenset(line.rstrip("\n") for line in fh if line.strip())
    return _common


def is_common(password: str) -> bool:
    """True when the password, ignoring case, is in the common-password list."""
    candidate = normalise(password)
    forms = {candidate.lower(), candidate.casefold(), candidate.strip().lower()}
    listed = common_passwords()
    return any(form in listed for form in forms)


def effective_min_length(min_length: int, mfa_enabled: bool = False) -> int:
    """The minimum actually enforced: see the module docstring."""
    if min_length < ABSOLUTE_MIN_LENGTH:
        raise ValueError(f"min_length may never be below {ABSOLUTE_MIN_LENGTH}")
    if not mfa_enabled:
        return max(min_length, MIN_LENGTH_WITHOUT_MFA)
    return min_length


def _check_max_length(max_length: int, min_length: int) -> None:
    if max_length < MIN_ACCEPTED_MAX_LENGTH:
        raise ValueError(f"max_length must accept at least {MIN_ACCEPTED_MAX_LENGTH} characters")
    if max_length < min_length:
        raise ValueError("max_length is below min_length")


def _tokens(text: str) -> set[str]:
    pieces = text.replace(".", " ").replace("_", " ").replace("-", " ").replace("+", " ")
    pieces = pieces.replace("'", " ").replace("\u2019", " ")
    return {p for p in pieces.split() if len(p) >= MIN_TOKEN_LENGTH}


def _personal_fragments(email: str, names: Iterable[str]) -> tuple[set[str], set[str]]:
    """(e-mail fragments, name fragments), folded, to be looked for in a password."""
    email_parts: set[str] = set()
    folded_email = _fold(email.strip())
    if folded_email:
        email_parts.add(folded_email)
        local = folded_email.split("@", 1)[0]
        if len(local) >= MIN_CONTAINED_LENGTH:
            email_parts.add(local)
        email_parts |= _tokens(local)
    name_parts: set[str] = set()
    for name in names:
        folded = " ".join(_fold(name or "").split())
        if len(folded) >= MIN_CONTAINED_LENGTH:
            name_parts.add(folded)
            name_parts.add(folded.replace(" ", ""))
        name_parts |= _tokens(folded)
    return email_parts, name_parts


def check_password(password: str, *, min_length: int, max_length: int = 128,
                   email: str = "", names: Iterable[str] = (), mfa_enabled: bool = False,
                   check_common_list: bool = True) -> list[str]:
    """Error messages for a new password; an empty list means it is accepted.

    ``min_length`` is the configured minimum (see :func:`effective_min_length`),
    ``email`` and ``names`` (given name, family name...) the account's own, and
    ``check_common_list`` mirrors ``passwords.check_common_list``.
    """
    minimum = effective_min_length(min_length, mfa_enabled)
    _check_max_length(max_length, minimum)
    # Cheap guard before normalising: NFKC composes at most 3 code points into 1.
    if len(password) > 4 * max_length:
        return [_("Le mot de passe ne doit pas dépasser %(max)s caractères.", max=max_length)]

    errors: list[str] = []
    normalised = normalise(password)
    length = len(normalised)
    if length < minimum:
        errors.append(_("Le mot de passe doit contenir au moins %(min)s caractères "
                        "(il en contient %(length)s).", min=minimum, length=length))
    elif length > max_length:
        errors.append(_("Le mot de passe ne doit pas dépasser %(max)s caractères "
                        "(il en contient %(length)s).", max=max_length, length=length))

    if check_common_list and normalised and is_common(normalised):
        errors.append(_("Ce mot de passe fait partie des mots de passe les plus courants ou "
                        "déjà divulgués : choisissez-en un autre."))

    folded = _fold(normalised)
    compact = "".join(folded.split())
    email_parts, name_parts = _personal_fragments(email, names)
    if any(part in folded for part in email_parts):
        errors.append(_("Le mot de passe ne doit pas contenir votre adresse e-mail "
                        "ni une partie de celle-ci."))
    if any(part in folded or part in compact for part in name_parts):
        errors.append(_("Le mot de passe ne doit pas contenir votre nom ni votre prénom."))
    return errors


def describe_policy(min_length: int, *, mfa_enabled: bool = False, max_length: int = 128) -> str:
    """The rule in plain words, to show next to the field before the user types."""
    minimum = effective_min_length(min_length, mfa_enabled)
    return _("Au moins %(min)s caractères (jusqu'à %(max)s). Espaces, accents et "
             "caractères spéciaux sont acceptés mais pas obligatoires : une phrase facile "
             "à retenir convient très bien. Évitez les mots de passe courants et votre nom "
             "ou adresse e-mail.", min=minimum, max=max_length)

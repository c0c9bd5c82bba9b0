"""Password policy: what a new password must satisfy, and how to say it (in the page's
language: French msgids through Flask-Babel, French outside a request).

Follows NIST SP 800-63B (5.1.1.2), CNIL délibération 2022-100 and the ANSSI
recommendations on authentication:

* length is what counts, measured in Unicode code points after NFKC
  normalisation (so that "é" typed as one or two code points counts once);
* every character is allowed (spaces, accents, emoji), nothing is truncated,
  at least 64 characters are always accepted, and there is no composition rule
  ("one upper case, one digit...");
* a password from the shipped list of common or breached passwords is refused, and so
  is one made of such a password, a keyboard walk ("azertyuiop", "qwerty") or a common
  French word with digits or symbols around it ("azertyuiop123", "soleil2024!");
* a password that contains the user's e-mail address or its local part is refused; the
  pieces of their names and of the local part (4 letters or more) count as whole words
  only ("Ali" is not in "aligot"), and refuse the password only when what is left
  without them is shorter than the minimum: a passphrase may hold a word that happens to
  be someone's name ("mot de passe sans script" for Mme Sans), "marie dupont 1" may not
  (case- and accent-insensitively).

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

# Rows of the French (AZERTY) and English (QWERTY) keyboards, and the digits.
KEYBOARD_ROWS = ("azertyuiop", "qsdfghjklm", "wxcvbn", "qwertyuiop", "asdfghjkl", "zxcvbnm",
                 "1234567890", "azqswxedcrfvtgbyhnujikolpm", "qazwsxedcrfvtgbyhnujmikolp")
# A keyboard walk is refused from this length on.
MIN_WALK_LENGTH = 4
# Common French words and names of places not all in the breached-password list.
FRENCH_WORDS = frozenset({
    "motdepasse", "bonjour", "bonsoir", "salut", "soleil", "amour", "jetaime", "doudou",
    "loulou", "chouchou", "bisous", "coucou", "chocolat", "princesse", "papillon", "france",
    "paris", "marseille", "lyon", "noumea", "caledonie", "nouvellecaledonie", "provincesud",
    "tahiti", "vacances", "famille", "maison", "bienvenue", "secret", "motdepasse",
    "utilisateur", "compte", "usager", "administrateur", "azerty", "qwerty"})

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


def is_keyboard_walk(text: str) -> bool:
    """A run of neighbouring keys of one row, either way ("azertyuiop", "poiuy", "1234")."""
    return len(text) >= MIN_WALK_LENGTH and any(
        text in row or text in row[::-1] for row in KEYBOARD_ROWS)


def is_common(password: str) -> bool:
    """True when the password, ignoring case, is in the common-password list, or is one
    of those, a keyboard walk or a common French word with digits and symbols around."""
    candidate = normalise(password)
    forms = {candidate.lower(), candidate.casefold(), candidate.strip().lower()}
    listed = common_passwords()
    if any(form in listed for form in forms):
        return True
    folded = "".join(_fold(candidate).split())
    core = folded.strip("0123456789!?.,;:*#@$%&_-+=/\\'\"()[]{}<>~^")
    if not core or not core.isalnum():
        return False
    if len(core) < MIN_WALK_LENGTH:
        return core.isdigit() or not core.isalpha()
    return core in listed or core in FRENCH_WORDS or is_keyboard_walk(core) or \
        _made_of_walks(core)


def _made_of_walks(text: str) -> bool:
    """Letters then digits that are each a walk ("azerty123456" after the digits are
    stripped is handled above; "qsdf1234qsdf" here)."""
    pieces = [p for p in "".join(c if c.isalpha() else " " for c in text).split()]
    digits = [p for p in "".join(c if c.isdigit() else " " for c in text).split()]
    return bool(pieces) and all(is_keyboard_walk(p) or p in FRENCH_WORDS for p in pieces) \
        and all(is_keyboard_walk(d) or len(d) <= 4 for d in digits)


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


def _personal_fragments(email: str, names: Iterable[str]) -> tuple[str, str, set[str], set[str]]:
    """(address, local part, its words, the names' words), folded, to be looked for in a
    password: the address and a local part of 3 or more characters as they are, the words
    (4 letters or more) as whole words."""
    folded_email = _fold(email.strip())
    local = folded_email.split("@", 1)[0] if folded_email else ""
    local_kept = local if len(local) >= MIN_CONTAINED_LENGTH else ""
    email_words = _tokens(local)
    name_words: set[str] = set()
    for name in names:
        folded = " ".join(_fold(name or "").split())
        name_words |= _tokens(folded)
    return folded_email, local_kept, email_words, name_words


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
    address, local, email_words, name_words = _personal_fragments(email, names)
    if (address and address in folded) or (local and local in folded) or \
            _leans_on(folded, email_words, minimum):
        errors.append(_("Le mot de passe ne doit pas contenir votre adresse e-mail "
                        "ni une partie de celle-ci."))
    if _leans_on(folded, name_words, minimum):
        errors.append(_("Le mot de passe ne doit pas contenir votre nom ni votre prénom."))
    return errors


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text).split()


def _leans_on(folded: str, personal: set[str], minimum: int) -> bool:
    """True when ``personal`` words appear as whole words of the password, or glued
    together ("mariedupont"), and what is left without them is below the minimum."""
    if not personal:
        return False
    kept: list[str] = []
    found = False
    for word in _words(folded):
        rest = word
        for part in sorted(personal, key=len, reverse=True):
            if part in rest and (rest == part or _glued(rest, personal)):
                rest = rest.replace(part, "")
                found = True
        kept.append(rest)
    return found and len("".join(kept)) < minimum


def _glued(word: str, personal: set[str]) -> bool:
    """``word`` made only of personal words and digits ("mariedupont", "dupont1990")."""
    rest = word
    for part in sorted(personal, key=len, reverse=True):
        rest = rest.replace(part, "")
    return rest == "" or rest.isdigit()


def describe_policy(min_length: int, *, mfa_enabled: bool = False, max_length: int = 128) -> str:
    """The rule in plain words, to show next to the field before the user types."""
    minimum = effective_min_length(min_length, mfa_enabled)
    return _("Au moins %(min)s caractères (jusqu'à %(max)s). Espaces, accents et "
             "caractères spéciaux sont acceptés mais pas obligatoires : une phrase facile "
             "à retenir convient très bien. Évitez les mots de passe courants et votre nom "
             "ou adresse e-mail.", min=minimum, max=max_length)

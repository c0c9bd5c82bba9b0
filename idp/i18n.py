"""Translation helpers that do not need Flask.

Message ids are the French texts. Code that runs outside a request (settings,
exceptions raised by plain functions) keeps its French text and marks it with
:func:`N_`, so that ``scripts/i18n update`` extracts it; the page translates it when
it shows it, with ``_(text)``. See docs/i18n.md.
"""

from __future__ import annotations

import re


def N_(text: str) -> str:  # noqa: N802  (the name gettext tools look for)
    """Mark ``text`` for extraction, without translating it (no-op)."""
    return text


# French article -> the same name after "de" / "à" (contracted: "du", "des", "au", "aux").
_OF = (("le ", "du "), ("les ", "des "), ("la ", "de la "), ("l'", "de l'"), ("l\u2019", "de l\u2019"))
_TO = (("le ", "au "), ("les ", "aux "), ("la ", "à la "), ("l'", "à l'"), ("l\u2019", "à l\u2019"))


def _with_article(name: str, forms: tuple, bare: str) -> str:
    name = name.strip()
    for article, replacement in forms:
        if name[:len(article)].lower() == article:
            return replacement + name[len(article):]
    return bare + name


def of_name(name: str) -> str:
    """A name configured with its article, after "de": ``"la Province Sud"`` ->
    ``"de la Province Sud"``, ``"le Département"`` -> ``"du Département"``."""
    return _with_article(name, _OF, "de ")


def to_name(name: str) -> str:
    """The same after "à": ``"à la Province Sud"``, ``"au Département"``."""
    return _with_article(name, _TO, "à ")


def without_article(name: str) -> str:
    """``"la Province Sud"`` -> ``"Province Sud"`` (for English sentences)."""
    name = name.strip()
    for article in ("le ", "la ", "les ", "l'", "l\u2019"):
        if name[:len(article)].lower() == article:
            return name[len(article):]
    return name


def sentence_start(text: str) -> str:
    """The text with a capital first letter ("La Province Sud"), the rest unchanged."""
    return text[:1].upper() + text[1:]


NARROW_NBSP = "\u202f"
NBSP = "\u00a0"
_TYPOGRAPHY = re.compile(r" ([?!;])| (:)(?=\s|$)|(«) | (»)")


def french_typography(text: str) -> str:
    """French spacing: a narrow no-break space before "?", "!" and ";", a no-break space
    before ":" and inside « », so that a line never starts with one of them. The French
    catalogue (idp/translations/fr) is the message ids passed through this."""
    def space(match: re.Match) -> str:
        if match.group(1):
            return NARROW_NBSP + match.group(1)
        if match.group(2):
            return NBSP + ":"
        if match.group(3):
            return "«" + NBSP
        return NBSP + "»"
    return _TYPOGRAPHY.sub(space, text)

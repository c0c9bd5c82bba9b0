"""Codes that e-mailed links carry in their fragment (``#code=...``), and that a person
without JavaScript types from the message: 20 characters of an alphabet without
look-alikes (100 bits), shown in groups of four (``K7QM-3XPA-9RTD-C4WZ-8HNE``).

A link's path and query reach every proxy and access log on the way; its fragment never
leaves the browser. The page's script (``js/fragment-code.js``) fills the form with it,
and the form posts it: the code travels in a request body only. Stored as bearer
artefacts (``consumables.issue_bearer``), by their digest.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
LENGTH = 20
GROUP = 4
_SEPARATORS = re.compile(r"[\s\-]")


def new_link_code() -> str:
    """A new code, grouped for reading."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(code[i:i + GROUP] for i in range(0, LENGTH, GROUP))


def normalise_link_code(raw: str | None) -> str | None:
    """The code as stored (upper case, no dashes or spaces), or None when ``raw`` cannot
    be one."""
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    code = _SEPARATORS.sub("", raw).upper()
    if len(code) != LENGTH or any(char not in ALPHABET for char in code):
        return None
    return code


def stored_value(raw: str | None) -> str | None:
    """What a typed or filled-in code is stored as; a link sent before codes moved to the
    fragment carried a longer token in its URL, taken as it is (None: nothing to look
    up)."""
    code = normalise_link_code(raw)
    if code is not None:
        return code
    token = (raw or "").strip()
    return token if 0 < len(token) <= 512 else None


def fragment(code: str) -> str:
    """What follows the link's path: ``#code=...``."""
    return "#code=" + code

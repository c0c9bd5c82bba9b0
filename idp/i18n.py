"""Translation helpers that do not need Flask.

Message ids are the French texts. Code that runs outside a request (settings,
exceptions raised by plain functions) keeps its French text and marks it with
:func:`N_`, so that ``scripts/i18n update`` extracts it; the page translates it when
it shows it, with ``_(text)``. See docs/i18n.md.
"""

from __future__ import annotations


def N_(text: str) -> str:  # noqa: N802  (the name gettext tools look for)
    """Mark ``text`` for extraction, without translating it (no-op)."""
    return text

"""Pages rendered once per shape, then filled in per request.

Some pages have the same shape for every visitor of a kind: the login page that answers an
authorization request carries the same words, fields and links for every citizen arriving in
French from a named démarche; only the flow's id, the CSRF token and a few URLs differ.
Rendering it through Jinja and WTForms costs about two thirds of that request's CPU
(docs/performance-history.md, eleventh pass). A :class:`Skeleton` is such a page rendered
once with a marker in place of each per-request value and split at the markers: filling it
in is one join.

Each slot declares how its value is escaped where the template puts it (:data:`TEXT` for HTML
text and attribute values, :data:`QUERY` for a value in a URL's query string inside an
attribute); tests compare filled pages with pages rendered in full, byte for byte.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Hashable, Mapping
from urllib.parse import quote_plus

from markupsafe import escape

Encoder = Callable[[str], str]


def TEXT(value: str) -> str:
    """As Jinja's autoescape and WTForms write a value: HTML-escaped."""
    return str(escape(value))


# Werkzeug's url_for writes query values as urlencode(..., safe=...) with these characters
# left as they are (werkzeug.urls._urlencode); Jinja then escapes the URL.
_QUERY_SAFE = "!$'()*,/:;?@"


def QUERY(value: str) -> str:
    """As ``url_for(endpoint, name=value)`` writes ``value`` inside an HTML attribute."""
    return TEXT(quote_plus(value, safe=_QUERY_SAFE))


class Skeleton:
    """A page split at its slots: ``parts[0] slot[0] parts[1] slot[1] ... parts[-1]``."""

    __slots__ = ("parts", "slots", "encoders")

    def __init__(self, parts: list[str], slots: list[str], encoders: Mapping[str, Encoder]):
        self.parts = parts
        self.slots = slots
        self.encoders = encoders

    def fill(self, values: Mapping[str, str | Callable[[], str]]) -> str:
        """The page with each slot's value, escaped by its encoder. A value may be a
        function, called only when the page shows that slot."""
        encoded: dict[str, str] = {}
        pieces = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:]):
            text = encoded.get(slot)
            if text is None:
                value = values[slot]
                text = encoded[slot] = self.encoders[slot](value() if callable(value) else value)
            pieces.append(text)
            pieces.append(part)
        return "".join(pieces)


class SkeletonCache:
    """The skeletons of one application, by a key the caller chooses (template, locale and
    whatever else changes the page's shape). Bounded by the number of shapes, not visitors."""

    def __init__(self) -> None:
        self._pages: dict[Hashable, Skeleton] = {}
        # Letters and digits only: HTML escaping and URL quoting leave them as they are.
        self._nonce = secrets.token_hex(6)

    def __len__(self) -> int:
        return len(self._pages)

    def page(self, key: Hashable, slots: Mapping[str, Encoder],
             render: Callable[[Mapping[str, str]], str]) -> Skeleton:
        """The skeleton under ``key``, rendered on first use by ``render(markers)``, which
        must put ``markers[slot]`` wherever that slot's value goes. Two threads may both
        render a new shape; either result is the same page."""
        skeleton = self._pages.get(key)
        if skeleton is None:
            skeleton = self._pages[key] = self._build(slots, render)
        return skeleton

    def _build(self, slots: Mapping[str, Encoder],
               render: Callable[[Mapping[str, str]], str]) -> Skeleton:
        markers = {name: f"sk{self._nonce}n{i}x" for i, name in enumerate(slots)}
        by_marker = {marker: name for name, marker in markers.items()}
        page = str(render(markers))
        pieces = re.split("(" + "|".join(map(re.escape, by_marker)) + ")", page)
        names = [by_marker[marker] for marker in pieces[1::2]]
        missing = set(slots) - set(names)
        if missing:
            # A template that transforms a value (a filter, a truncation) would lose it:
            # refuse rather than serve a page without it.
            raise ValueError(f"slots not found in the rendered page: {sorted(missing)}")
        return Skeleton(pieces[0::2], names, dict(slots))

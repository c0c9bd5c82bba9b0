"""Requests carrying a NUL character are refused before any view reads them.

Nobody types U+0000 into a form or a link: a NUL comes from a crafted request. PostgreSQL
can neither store one in a text column nor compare one with it (it raises, a 500 where
SQLite would quietly keep the character), so one check at the door stands for a check on
every column. Other control characters, which a person might paste, are refused per field
with a message by :class:`idp.web.forms.BaseForm`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask, render_template, request
from flask_babel import gettext as _

from ..paths import is_api_path

log = logging.getLogger(__name__)

NUL = "\x00"


def carries_nul(path: str, pairs: Iterable[tuple[str, str]]) -> bool:
    """Whether ``path`` or any name or value of ``pairs`` holds a NUL character."""
    if NUL in path:
        return True
    return any(NUL in name or NUL in value for name, value in pairs)


def install_nul_guard(app: Flask) -> None:
    """Register the check as a ``before_request`` hook of ``app``."""

    @app.before_request
    def _refuse_nul_characters():
        pairs = request.args.items(multi=True)
        if request.method == "POST":  # a GET has no form to parse
            pairs = [*pairs, *request.form.items(multi=True)]
        if not carries_nul(request.path, pairs):
            return None
        # The endpoint, not the path: the path may hold the NUL itself.
        log.warning("refused a request with a NUL character (%s %s)", request.method,
                    request.endpoint)
        if is_api_path(request.path):
            return {"error": "invalid_request",
                    "error_description": "The request holds a NUL character."}, 400
        return render_template(
            "errors/error.html", status=400, title=_("Requête invalide"),
            message=_("La demande contient un caractère non autorisé. Revenez à la page "
                      "précédente et recommencez.")), 400

"""Where a finished sign-in goes next.

Usually a redirect to the flow's ``return_to``. When that is a page that has registered
itself as answerable in place (the authorization request waiting for this sign-in,
``/authorize/resume/<flow>``), its answer is given at once, in the response to the
sign-in's own POST: the browser goes straight back to the démarche with its code, one
redirect and one request fewer, as Keycloak does. The page answers ``None`` when it
would show something (a consent screen, an error), and the browser is then redirected
to it as before, so that a page is never the answer to a POST.

The areas register their pages at start-up (:func:`answer_in_place`); this module knows
none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, current_app, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from ..services import services
from .terms import needs_acceptance

# endpoint -> function(**view_args) -> a response, or None to be redirected to instead
InPlace = Callable[..., ResponseReturnValue | None]
EXTRA = "in_place"


def answer_in_place(app: Flask, endpoint: str, answer: InPlace) -> None:
    """Let a finished sign-in answer with ``answer`` instead of redirecting to
    ``endpoint``. ``answer`` runs in the sign-in's request: it must not read that
    request's form, and it returns None for anything but a redirect."""
    app.extensions["idp"].extras.setdefault(EXTRA, {})[endpoint] = answer


def continue_to(target: str) -> ResponseReturnValue:
    """The answer to a sign-in that succeeded: ``target``'s own answer if it registered
    one and nothing stands before it, else a redirect to ``target``. Commits the
    request's transaction: the sign-in (``sign_in(..., commit=False)``) and what the
    answer writes (the code) go in one."""
    answer = _in_place_answer(target)
    services().db.session.commit()
    return answer if answer is not None else redirect(target)


def _in_place_answer(target: str) -> ResponseReturnValue | None:
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.query:
        return None
    registered = services().extras.get(EXTRA)
    if not registered:
        return None
    try:
        endpoint, view_args = current_app.create_url_adapter(request).match(
            parts.path, method="GET")
    except HTTPException:  # no such page, or a redirect (RequestRedirect)
        return None
    answer = registered.get(endpoint)
    # New terms to accept come first: the redirect leads there (flows/terms.py).
    if answer is None or needs_acceptance():
        return None
    return answer(**view_args)

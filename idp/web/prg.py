"""Post/Redirect/Get for the pages a POST answers (a form sent back with its errors, a
step's next page): the browser's Back button and reload never ask to send a form again
("Confirm Form Resubmission", ERR_CACHE_MISS: the pages are ``no-store``).

A blueprint that calls :func:`post_redirect_get` answers every POST with a page by a 303
to the same address with ``vue=<token>``; the page is kept in the key-value store, bound
to the browser's session, and shown once by that GET (with its status: a form with errors
is still a 400). Opened again (Back, reload, another browser), the address shows the step
afresh. Redirects, JSON and files are left alone, and so are the answers of an address
that only takes POSTs.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, redirect, request, session
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from ..services import services

PARAM = "vue"
# Long enough for a slow connection to follow the redirect.
STASH_TTL = 120
KEPT_HEADERS = ("Retry-After",)


def _key(token: str) -> str:
    return f"prg:{session.browser_id}:{token}"


def _address(**extra: str) -> str:
    args = [(k, v) for k, v in request.args.items(multi=True) if k != PARAM]
    args += list(extra.items())
    return request.path + ("?" + urlencode(args) if args else "")


def _shown_by_get(path: str) -> bool:
    """Whether the address also answers a GET (a POST-only action keeps its answer)."""
    try:
        current_app.url_map.bind("").match(path, method="GET")
    except (MethodNotAllowed, NotFound):
        return False
    except RequestRedirect:
        return False
    return True


def post_redirect_get(bp: Blueprint) -> None:
    """Answer the blueprint's POSTs by Post/Redirect/Get (see the module docstring)."""

    @bp.after_request
    def _redirect_after_post(response: Response) -> Response:
        if request.method != "POST" or response.is_streamed or \
                300 <= response.status_code < 400 or response.mimetype != "text/html" or \
                not _shown_by_get(request.path):
            return response
        token = secrets.token_urlsafe(16)
        page = {"status": response.status_code, "body": response.get_data(as_text=True),
                "headers": {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers}}
        services().kv.set(_key(token), json.dumps(page), STASH_TTL)
        return redirect(_address(**{PARAM: token}), code=303)

    @bp.before_request
    def _show_after_redirect():
        token = request.args.get(PARAM)
        if request.method != "GET" or token is None:
            return None
        kv = services().kv
        stored = kv.get(_key(token[:64])) if token else None
        if stored is None:
            return redirect(_address(), code=303)
        kv.delete(_key(token[:64]))
        page = json.loads(stored)
        return Response(page["body"], status=page["status"], headers=page["headers"],
                        mimetype="text/html")

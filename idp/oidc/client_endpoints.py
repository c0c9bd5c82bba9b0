"""The endpoints a relying party's server calls (token, introspection, revocation with
its client credentials; userinfo with a user's access token), served below Flask.

They take a form body or a bearer token and answer JSON: no browser session, page, CSRF
token, locale or URL routing, which is what a Flask request costs (about two thirds of a
``client_credentials`` grant, docs/performance-history.md, sixth pass). :class:`ClientEndpoints`
is a WSGI middleware in front of the Flask application: it reads the request straight
from the WSGI environ into an Authlib :class:`OAuth2Request`, hands it to the
framework-free :class:`~idp.oidc.server.ClientServer` (Authlib's own grants and
endpoints) or to :func:`~idp.oidc.endpoints.userinfo.userinfo`, and does what Flask's
hooks did for these paths:

- the client-failure limit of :mod:`idp.security.ratelimit` (429 with ``Retry-After``)
  on the three endpoints where clients authenticate;
- ``Cache-Control: no-store`` and the security headers;
- a JSON ``server_error`` (500) on an unexpected error, after a rollback;
- the database session given back at the end of the request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from werkzeug.datastructures import EnvironHeaders

from ..persistence.db import Database
from ..security.ratelimit import ClientFailures, slow_down
from .endpoints.userinfo import bearer_error, bearer_token, userinfo
from .server import ClientServer

log = logging.getLogger(__name__)

# Path -> the ClientServer endpoint answering it ("token": the grants), or "userinfo".
ROUTES = {"/token": "token", "/introspect": "introspection", "/revoke": "revocation",
          "/userinfo": "userinfo"}
# OIDC Core §5.3 (and HEAD with GET, RFC 9110 §9.3.2); the others: POST only.
METHODS = {"userinfo": ("GET", "HEAD", "POST")}
FORM_TYPE = "application/x-www-form-urlencoded"
# Enough for a private_key_jwt assertion with room to spare; a form is a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024

Answer = tuple[int, Any, list[tuple[str, str]]]


class BadRequest(Exception):
    """The request is not a well-formed form post: ``invalid_request``."""

    def __init__(self, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


class RequestHeaders(EnvironHeaders):
    """The request's headers, read from the environ. Always true: Authlib's
    ``headers or {}`` would otherwise count them, walking the whole environ (4 % of a
    ``client_credentials`` grant)."""

    def __bool__(self) -> bool:
        return True


class FormRequest(OAuth2Request):
    """An OAuth 2.0 request read from the WSGI environ: headers as they came, parameters
    from the form body only (RFC 6749 §3.2), each at most once, empty ones dropped
    (§3.1: "treated as if they were omitted")."""

    def __init__(self, environ: dict, form: dict[str, str]) -> None:
        super().__init__(environ["REQUEST_METHOD"], _url(environ),
                         headers=RequestHeaders(environ))
        self._form = form
        self.payload = BasicOAuth2Payload(form)
        #: Set by ClientServer once the client has proved who it is (a secret or a key).
        self.client_authenticated = False

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}

    @classmethod
    def from_environ(cls, environ: dict) -> FormRequest:
        return cls(environ, read_form(environ))


def _url(environ: dict) -> str:
    # Authlib only checks its scheme (https, unless AUTHLIB_INSECURE_TRANSPORT is set).
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    return (f"{environ.get('wsgi.url_scheme', 'http')}://{host}"
            f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}")


def _mimetype(environ: dict) -> str:
    return environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()


def read_form(environ: dict) -> dict[str, str]:
    """The parameters of an ``application/x-www-form-urlencoded`` body."""
    if _mimetype(environ) != FORM_TYPE:
        raise BadRequest(f"the parameters must be sent as {FORM_TYPE}")
    length_header = environ.get("CONTENT_LENGTH") or ""
    try:
        length = int(length_header) if length_header else 0
    except ValueError:
        raise BadRequest("invalid Content-Length") from None
    if length < 0:
        raise BadRequest("invalid Content-Length")
    if length > MAX_BODY_BYTES:
        raise BadRequest("request body too large", 413)
    stream = environ["wsgi.input"]
    if length:
        raw = stream.read(length)
    elif environ.get("wsgi.input_terminated"):  # chunked, the server delimits it
        raw = stream.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise BadRequest("request body too large", 413)
    else:
        raw = b""
    form: dict[str, str] = {}
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, encoding="utf-8",
                          errors="strict", max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("malformed form body") from None
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            # PostgreSQL cannot compare a text with a NUL in it (security/input_guard.py).
            raise BadRequest("a parameter holds a NUL character")
        if not value:
            continue
        if name in form:
            raise BadRequest(f"parameter {name!r} repeated"[:100])
        form[name] = value
    return form


class ClientEndpoints:
    """WSGI middleware answering :data:`ROUTES` before the Flask application."""

    def __init__(self, wsgi_app: Callable, server: ClientServer, db: Database,
                 failures: ClientFailures, security_headers: list[tuple[str, str]]) -> None:
        self.wsgi_app = wsgi_app
        self.server = server
        self.db = db
        self.failures = failures
        self.security_headers = security_headers

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        name = ROUTES.get(environ.get("PATH_INFO", ""))
        if name is None:
            return self.wsgi_app(environ, start_response)
        status, payload, headers = self.answer(name, environ)
        body = json.dumps(payload).encode()
        start_response(f"{status} {HTTPStatus(status).phrase}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"), ("Pragma", "no-cache"),
            *[(k, v) for k, v in headers if k.lower() not in _SET_HERE],
            *self.security_headers])
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def answer(self, name: str, environ: dict) -> Answer:
        """``(status, payload, extra headers)`` of one call to endpoint ``name``."""
        allowed = METHODS.get(name, ("POST",))
        if environ.get("REQUEST_METHOD") not in allowed:
            return 405, {"error": "invalid_request",
                         "error_description": f"use {' or '.join(allowed)}"}, [
                ("Allow", ", ".join(allowed))]
        try:
            if name == "userinfo":
                return self._userinfo(environ)
            return self._client_call(name, environ)
        except Exception:  # noqa: BLE001 - the client gets the spec's error, the log the rest
            log.exception("unhandled error on %s %s", environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            self.db.session.rollback()
            return 500, {"error": "server_error"}, []
        finally:
            self.db.remove()

    def _client_call(self, name: str, environ: dict) -> Answer:
        address = environ.get("REMOTE_ADDR")
        wait = self.failures.wait(address)
        if wait:
            return 429, slow_down(wait), [("Retry-After", str(wait))]
        request = None
        try:
            request = FormRequest.from_environ(environ)
        except BadRequest as error:
            answer = error.status, {"error": "invalid_request",
                                    "error_description": error.description}, []
        else:
            answer = (self.server.create_token_response(request) if name == "token"
                      else self.server.create_endpoint_response(name, request))
        if 400 <= answer[0] < 500 and not (request and request.client_authenticated):
            self.failures.failed(address, name)
        return answer

    def _userinfo(self, environ: dict) -> Answer:
        form: dict[str, str] = {}
        if environ.get("REQUEST_METHOD") == "POST" and _mimetype(environ) == FORM_TYPE:
            try:
                form = read_form(environ)
            except BadRequest as error:
                return bearer_error(error.status, "invalid_request", error.description)
        token, ambiguous = bearer_token(environ.get("HTTP_AUTHORIZATION"), form)
        return userinfo(self.server, token, ambiguous)


_SET_HERE = frozenset({"content-type", "content-length", "cache-control", "pragma"})

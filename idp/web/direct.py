"""A protocol request answered without gunicorn's parser, environ builder and response.

For a ``client_credentials`` grant, gunicorn's HTTP parser, its WSGI environ builder and
its response object cost as much CPU as the provider's own work (docs/performance-history.md,
tenth pass). The provider's worker (``gunicorn_worker.ProtocolWorker``) already holds the
whole request, peeked and checked strictly (``peek_request``), when it decides to answer
it on its event loop. This module turns those bytes into the WSGI environ gunicorn would
build (:func:`direct_environ`) and the application's answer into the bytes gunicorn would
send (:func:`direct_response`).

It is deliberately narrow. Whatever gunicorn would refuse, rewrite or treat specially
gives ``None`` from :func:`direct_environ`, and the request goes the ordinary way, where
gunicorn decides: a method other than GET, HEAD or POST; a target with a fragment or a
character outside printable ASCII; a header name with ``_`` or outside the token
characters; a control character in a value; a repeated ``Host`` or ``Content-Type``;
``Expect``; disagreeing scheme headers; more or longer fields than gunicorn's limits; a
Unix socket; ``SCRIPT_NAME`` in the environment; the PROXY protocol.

``tests/web/test_direct.py`` compares both functions' results with gunicorn's own for the
same bytes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from functools import lru_cache

from gunicorn import SERVER, util
from gunicorn.http.message import RFC9110_5_5_INVALID_AND_DANGEROUS, TOKEN_RE, _ip_in_allow_list
from gunicorn.http.wsgi import HEADER_VALUE_RE, STATUS_RE, base_environ

DIRECT_METHODS = frozenset({"GET", "HEAD", "POST"})
# gunicorn's own handling of these needs its parser (Expect: 100-continue) or its
# response (Transfer-Encoding); peek_request already refuses Transfer-Encoding.
_NOT_DIRECT_HEADERS = frozenset({"EXPECT", "TRANSFER-ENCODING"})
_SINGLETONS = frozenset({"HOST", "CONTENT-TYPE"})


class DirectSettings:
    """What :func:`direct_environ` needs of gunicorn's configuration, read once per
    worker (each ``cfg`` attribute is a lookup through ``Config.__getattr__``)."""

    def __init__(self, cfg, multithread: bool = True) -> None:
        self.usable = (cfg.proxy_protocol == "off" and not os.environ.get("SCRIPT_NAME")
                       and not cfg.is_ssl)
        self.limit_request_line = cfg.limit_request_line
        self.limit_request_fields = cfg.limit_request_fields
        self.limit_request_field_size = cfg.limit_request_field_size
        self.secure_scheme_headers = dict(cfg.secure_scheme_headers)
        allow, networks = cfg.forwarded_allow_ips, cfg.forwarded_allow_networks()
        self.peer_trusted = lru_cache(maxsize=256)(
            lambda ip: _ip_in_allow_list(ip, allow, networks))
        self.template = base_environ(cfg)
        # gthread marks its environs multithreaded after wsgi.create().
        self.template["wsgi.multithread"] = multithread


def direct_environ(data: bytes, length: int, peer: object, server: object,
                   settings: DirectSettings) -> dict | None:
    """The WSGI environ gunicorn would build for the whole request ``data[:length]``
    (one found by ``peek_request``), or None where gunicorn must decide. ``wsgi.input``
    reads the body from ``data``; ``gunicorn.socket`` is left to the caller."""
    if not settings.usable or not isinstance(peer, tuple) or not isinstance(server, tuple):
        return None
    end = data.find(b"\r\n\r\n", 0, length)
    if end < 0:
        return None
    head = data[:end].decode("latin-1")
    request_line, _, fields = head.partition("\r\n")
    if 0 < settings.limit_request_line < len(request_line):
        return None
    parts = request_line.split(" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    if method not in DIRECT_METHODS or version != "HTTP/1.1":
        return None
    if "#" in target or target.startswith("//") or _has_invalid_target_character(target):
        return None
    path, _, query = target.partition("?")

    environ = settings.template.copy()
    environ["wsgi.input"] = io.BytesIO(data[end + 4:length])
    environ["REQUEST_METHOD"] = method
    environ["QUERY_STRING"] = query
    environ["RAW_URI"] = target
    environ["SERVER_PROTOCOL"] = version

    scheme = None
    seen_singletons: set[str] = set()
    count = 0
    for line in fields.split("\r\n") if fields else ():
        count += 1
        if count > settings.limit_request_fields:
            return None
        if 0 < settings.limit_request_field_size < len(line) + 2:
            return None
        name, colon, value = line.partition(":")
        if not colon or "_" in name or not TOKEN_RE.fullmatch(name):
            return None
        name = name.upper()
        value = value.strip(" \t")
        if RFC9110_5_5_INVALID_AND_DANGEROUS.search(value) or name in _NOT_DIRECT_HEADERS:
            return None
        if name in _SINGLETONS:
            if name in seen_singletons:
                return None
            seen_singletons.add(name)
        expected = settings.secure_scheme_headers.get(name)
        if expected is not None and settings.peer_trusted(peer[0]):
            this = "https" if value == expected else "http"
            if scheme is not None and this != scheme:
                return None  # gunicorn answers 400 (InvalidSchemeHeaders)
            scheme = this
        if name == "CONTENT-TYPE":
            environ["CONTENT_TYPE"] = value
        elif name == "CONTENT-LENGTH":
            environ["CONTENT_LENGTH"] = value
        else:
            key = "HTTP_" + name.replace("-", "_")
            # gunicorn joins repeated fields with a comma.
            environ[key] = environ[key] + "," + value if key in environ else value

    environ["wsgi.url_scheme"] = scheme or "http"
    environ["REMOTE_ADDR"] = peer[0]
    environ["REMOTE_PORT"] = str(peer[1])
    environ["SERVER_NAME"] = server[0]
    environ["SERVER_PORT"] = str(server[1])
    environ["PATH_INFO"] = util.unquote_to_wsgi_str(path)
    environ["SCRIPT_NAME"] = ""
    return environ


def _has_invalid_target_character(target: str) -> bool:
    # RFC 9112 section 3.2: printable ASCII only (gunicorn's RFC9112_TARGET_INVALID).
    return not (target.isascii() and target.isprintable()) or " " in target


def keep_alive_head(status: str, date: str) -> str:
    """The status line and gunicorn's default headers of a kept-alive HTTP/1.1 response
    (``Response.default_headers``), before the application's own headers."""
    return f"HTTP/1.1 {status}\r\nServer: {SERVER}\r\nDate: {date}\r\nConnection: keep-alive\r\n"


class DirectResponseError(Exception):
    """The application's answer cannot be sent as it is (gunicorn would refuse it too)."""


def direct_response(app: Callable, environ: dict, date: str) -> bytes:
    """Call the WSGI ``app`` and return the whole HTTP/1.1 keep-alive response gunicorn
    would send for it, as one piece: status line, gunicorn's default headers, the
    application's headers (hop-by-hop ones dropped, as gunicorn does), the body.

    Raises the application's exception, or :class:`DirectResponseError` for an answer
    gunicorn would refuse (a malformed status or header, a body longer than its
    ``Content-Length``...): the caller answers 500 and closes, as gunicorn does."""
    started: list = []
    written: list[bytes] = []

    def start_response(status: str, headers: list, exc_info=None) -> Callable:
        if exc_info:
            try:
                if started and written:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif started:
            raise AssertionError("Response headers already set!")
        started[:] = [status, headers]
        return written.append

    result: Iterable[bytes] = app(environ, start_response)
    try:
        for chunk in result:
            if chunk:
                written.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise DirectResponseError("the application did not start a response")
    status, app_headers = started
    if not isinstance(status, str) or not STATUS_RE.fullmatch(status):
        raise DirectResponseError("invalid status")
    try:
        code = int(status[:3])
    except ValueError:
        raise DirectResponseError("invalid status") from None
    omits_body = environ["REQUEST_METHOD"] == "HEAD" or code in (204, 304) or code < 200
    body = b"".join(written)
    declared = None
    lines = [keep_alive_head(status, date)]
    for header in app_headers:
        line = _checked_lines.get(header) if type(header) is tuple else None
        if line is None:
            line = _header_line(header)
        if line is _CONTENT_LENGTH:
            value = header[1].strip(" \t")
            declared = int(value)
            if code == 204 or code < 200:
                continue
            line = "%s: %s\r\n" % (header[0], value)
        elif line is _HOP_BY_HOP:
            continue
        lines.append(line)
    if omits_body:
        body = b""
    elif declared is None:
        # gunicorn would send the body chunked; it is all here, so its length is known.
        lines += ("Content-Length: ", str(len(body)), "\r\n")
    elif declared != len(body):
        raise DirectResponseError("the body does not match its Content-Length")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + body


_CONTENT_LENGTH = "content-length"
_HOP_BY_HOP = "hop-by-hop"
# Checked header lines by (name, value): most of a protocol response's headers (the
# security headers, the content type, no-store) are the same on every response.
_checked_lines: dict[tuple[str, str], str] = {}
_CHECKED_LINES_MAX = 1024


def _header_line(header: tuple[str, str]) -> str:
    """The line an application's header is sent as, checked as gunicorn checks it, or
    one of the two markers above."""
    try:
        name, value = header
    except (TypeError, ValueError):
        raise DirectResponseError("a header is not a (name, value) pair") from None
    if not isinstance(name, str) or not TOKEN_RE.fullmatch(name):
        raise DirectResponseError("invalid header name")
    if not isinstance(value, str) or not HEADER_VALUE_RE.fullmatch(value):
        raise DirectResponseError("invalid header value")
    lower = name.lower()
    if lower == "content-length":
        if not value.strip(" \t").isdigit():
            raise DirectResponseError("invalid Content-Length")
        return _CONTENT_LENGTH  # never cached: it changes with the body
    if util.is_hoppish(lower):
        if lower in ("connection", "upgrade"):
            raise DirectResponseError("an upgrade is not answered here")
        line = _HOP_BY_HOP
    else:
        line = "%s: %s\r\n" % (name, value.strip(" \t"))
    if lower == "set-cookie":
        return line  # a session's value: not kept
    if len(_checked_lines) >= _CHECKED_LINES_MAX:
        _checked_lines.clear()  # varying values (Retry-After...): start again
    _checked_lines[(name, value)] = line
    return line

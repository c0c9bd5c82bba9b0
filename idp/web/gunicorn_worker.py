"""The provider's gunicorn worker: gthread, with protocol requests answered on the event loop.

gunicorn's ``gthread`` worker hands every request from its event loop to a pool thread
and the finished connection back again: a queue, a wake-up pipe, two ``epoll_ctl`` and a
GIL hand-off each way. For a small protocol request that hand-off is a good part of its
whole cost (docs/performance-history.md, third pass: about a third of the CPU of a
discovery or JWKS request, a tenth of a refresh grant, on two cores shared with the load).

This worker answers a request on the loop itself when two things hold:

- its path is one of the machine-to-machine endpoints (``INLINE_PATHS``): short,
  bounded work that never hashes a password and never renders a page;
- its bytes, headers and body, are all in the socket's receive buffer already
  (``complete_request``, on a ``MSG_PEEK``), so reading it cannot wait on the client.

Everything else (browser pages, the password checks behind them, a request still
arriving, chunked bodies, pipelined requests, TLS or HTTP/2 set up in gunicorn itself)
goes to the thread pool exactly as in ``gthread``. A slow or hostile client can
therefore hold a pool thread, as before, but never the loop.

A plain ``GET`` of the discovery document or the JWKS on a kept-alive connection is
answered by the worker itself, from the bytes the application keeps in memory
(``find_documents``: ``PublicDocuments.document``), without gunicorn's parser, WSGI
environ or response object: the same bytes gunicorn would send, at about half the CPU
(docs/performance-history.md, eighth pass). The other protocol requests on a kept-alive
connection go through the application without gunicorn's parser, environ builder and
response object: ``idp.web.direct`` builds the environ gunicorn would build and sends the
bytes gunicorn would send, or leaves the request to gunicorn when anything in it is
unusual (a third of a ``client_credentials`` grant's CPU, tenth pass). Neither happens
when an access log or request hooks are set, or keep-alive is off.

It also closes a kept-alive connection after ``GUNICORN_KEEPALIVE_REQUESTS`` requests
(default 100, as nginx's ``keepalive_requests``; 0 for no limit). Workers share one
listening socket and a connection stays with the worker that accepted it, so a client
or reverse proxy holding a few connections open can put them all on one worker, which is
one core under the GIL, while the others idle. Closed now and then, a connection comes
back to whichever worker is free to accept it (docs/operations.md, "Keep-alive and the
reverse proxy").

    gunicorn -k idp.web.gunicorn_worker.ProtocolWorker ...   # the default in gunicorn.conf.py
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Collection
from concurrent.futures import Future
from dataclasses import dataclass

from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers.gthread import TConn, ThreadWorker

from .direct import DirectSettings, direct_environ, direct_response, keep_alive_head
from .paths import API_PATHS, DOCUMENT_PATHS

INLINE_PATHS = frozenset(path.encode() for path in (*API_PATHS, *DOCUMENT_PATHS))
STATIC_PATHS = frozenset(path.encode() for path in DOCUMENT_PATHS)
# A protocol request is far smaller; anything longer goes to the pool.
PEEK_BYTES = 16384
DEFAULT_KEEPALIVE_REQUESTS = 100


def keepalive_requests_setting(environ: dict | None = None) -> int:
    """Requests served on one connection before it is closed (0: no limit), from
    ``GUNICORN_KEEPALIVE_REQUESTS``. gunicorn ignores settings it does not know in its
    configuration file, hence the environment."""
    raw = (os.environ if environ is None else environ).get("GUNICORN_KEEPALIVE_REQUESTS", "")
    if not raw.strip():
        return DEFAULT_KEEPALIVE_REQUESTS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"GUNICORN_KEEPALIVE_REQUESTS must be a whole number, not {raw!r}")
    if value < 0:
        raise ValueError("GUNICORN_KEEPALIVE_REQUESTS must be 0 (no limit) or more")
    return value


@dataclass(frozen=True)
class PeekedRequest:
    """What the worker needs to know of a whole request found at the start of the socket."""

    length: int          # request line, headers and body, in bytes
    method: bytes
    target: bytes
    keep_alive: bool     # HTTP/1.1, with no Connection header other than "keep-alive"
    has_body: bool


def peek_request(data: bytes, paths: Collection[bytes] = INLINE_PATHS) -> PeekedRequest | None:
    """The whole HTTP/1.x request for one of ``paths`` that ``data`` starts with, or None.

    Strict on purpose: anything unusual (bare LF line ends, folded or duplicate framing
    headers, ``Transfer-Encoding``, HTTP/2's preface) answers None and the request takes
    the thread pool, where gunicorn's parser decides. A request means gunicorn's parser
    will find the request line, the headers and ``Content-Length`` bytes of body in
    ``data``.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    line, _, fields = data[:end].partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        return None
    if parts[1].partition(b"?")[0] not in paths:
        return None
    length = None
    keep_alive = parts[2] == b"HTTP/1.1"
    for field in fields.split(b"\r\n") if fields else ():
        name, colon, value = field.partition(b":")
        if not colon or not name or name != name.strip() or b"\n" in field or b"\r" in field:
            return None
        name = name.lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            value = value.strip()
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif name == b"connection":
            # Anything but a plain keep-alive leaves the answer to gunicorn.
            keep_alive = keep_alive and value.strip().lower() == b"keep-alive"
    total = end + 4 + (length or 0)
    if len(data) < total:
        return None
    return PeekedRequest(total, parts[0], parts[1], keep_alive, bool(length))


def complete_request(data: bytes, paths: Collection[bytes] = INLINE_PATHS) -> bool:
    """Whether ``data`` starts with one whole HTTP/1.x request for one of ``paths``
    (:func:`peek_request`)."""
    return peek_request(data, paths) is not None


def find_documents(app) -> object | None:
    """The WSGI layer that serves the public documents (an object with a
    ``document(path)`` method, as ``idp.oidc.endpoints.discovery.PublicDocuments``), if
    only Flask and ``ProxyFix`` stand before it: they change neither the status nor
    the headers nor the body of its answers."""
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    for _ in range(8):
        if callable(getattr(app, "document", None)):
            return app
        if isinstance(app, Flask):
            app = app.wsgi_app
        elif isinstance(app, ProxyFix):
            app = app.app
        else:
            return None
    return None


_gunicorn_http_date = util.http_date
_date_cache: tuple[int, str] = (0, "")


def http_date(timestamp: float | None = None) -> str:
    """gunicorn's ``util.http_date``, formatted once a second rather than on every
    response (2.6 % of a ``client_credentials`` grant): the header counts whole seconds.
    The worker puts it in place of gunicorn's."""
    global _date_cache
    if timestamp is not None:
        return _gunicorn_http_date(timestamp)
    now = int(time.time())
    cached = _date_cache  # one read: another thread may swap it meanwhile
    if cached[0] != now:
        cached = _date_cache = (now, _gunicorn_http_date(now))
    return cached[1]


class CoalescingResponse(wsgi.Response):
    """gunicorn's HTTP/1 response, with the status line and headers sent together with
    the first body bytes.

    gunicorn sends the headers with one ``sendall`` and each body chunk with another. A
    protocol response is one small chunk: two trips through the TCP stack (and two
    segments for the client to read) where one does. The held headers go out at the
    latest when the response closes (a redirect, a HEAD) or before a ``sendfile``.
    """

    _held: bytes | None = None

    def send_headers(self) -> None:
        if self.headers_sent:
            return
        # As gunicorn's own send_headers, minus the write.
        tosend = self.default_headers()
        tosend.extend("%s: %s\r\n" % (k, v) for k, v in self.headers)
        self._held = util.to_bytestring("%s\r\n" % "".join(tosend), "latin-1")
        self.headers_sent = True

    def _flush_held(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self.sock.sendall(held)

    def _emit_body(self, data: bytes) -> None:
        if self._held is not None and not self.chunked:
            held, self._held = self._held, None
            self.sock.sendall(held + data)
            return
        self._flush_held()
        super()._emit_body(data)

    def sendfile(self, respiter) -> bool:
        self.send_headers()
        self._flush_held()
        return super().sendfile(respiter)

    def close(self) -> None:
        self.send_headers()
        self._flush_held()
        super().close()


class ProtocolWorker(ThreadWorker):
    """``gthread``, except that a complete protocol request is answered on the loop, that
    a response's headers leave with its body, and that a connection is closed after
    ``keepalive_requests`` requests."""

    keepalive_requests = DEFAULT_KEEPALIVE_REQUESTS

    @classmethod
    def check_config(cls, cfg, log) -> None:
        # Run by the master before it forks: a wrong value stops gunicorn at start.
        super().check_config(cfg, log)
        keepalive_requests_setting()

    def init_process(self) -> None:
        self.keepalive_requests = keepalive_requests_setting()
        # TLS and HTTP/2 are negotiated on the socket before any request: leave them
        # to gthread's pool (behind a proxy, as deployed, gunicorn sees neither).
        self.inline = not self.cfg.is_ssl and "h2" not in (self.cfg.http_protocols or ())
        # A request answered without gunicorn's parser is neither logged nor seen by
        # request hooks: only when there are none.
        settings = self.cfg.settings
        # Access logging may come from --access-logfile, a logging configuration or
        # syslog: gunicorn's logger knows (access_log_enabled).
        access_logged = getattr(self.log, "access_log_enabled", bool(self.cfg.accesslog))
        self.direct = self.inline and bool(self.cfg.keepalive) and not access_logged and all(
            settings[name].value is settings[name].default
            for name in ("pre_request", "post_request"))
        self.direct_settings = DirectSettings(self.cfg)
        # gthread builds its responses with wsgi.create(), which takes the module's
        # Response class (HTTP/2 passes its own). This process only runs this worker.
        wsgi.Response = CoalescingResponse
        util.http_date = http_date
        super().init_process()

    def enqueue_req(self, conn: TConn) -> None:
        request = self._peek_inline(conn) if self.inline else None
        if request is None:
            super().enqueue_req(conn)
        elif not self._answer_directly(conn, request):
            self._handle_inline(conn)

    def _peek_inline(self, conn: TConn) -> tuple[PeekedRequest, bytes] | None:
        if conn.is_http2:
            return None
        # Bytes already read by the parser (a pipelined request) are not in the socket.
        if conn.parser is not None and conn.parser.unreader.buf.getvalue():
            return None
        try:
            data = conn.sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:  # nothing yet (EAGAIN), or a socket error the pool will report
            return None
        request = peek_request(data)
        return None if request is None else (request, data)

    # -- without gunicorn's parser, environ and response -------------------------------
    _documents: object | None = None
    _documents_found = False

    def _answer_directly(self, conn: TConn, peeked: tuple[PeekedRequest, bytes]) -> bool:
        """Answer the peeked request without gunicorn's parser, environ or response
        object, which were most of what a document request cost and half of a
        ``client_credentials`` grant (docs/performance-history.md, eighth and tenth passes):

        - a plain ``GET`` of the discovery document or the JWKS with the bytes the
          application keeps in memory, without calling it;
        - any other protocol request through the WSGI application, with the environ
          gunicorn would build and the bytes gunicorn would send (``idp.web.direct``).

        Anything else answers False and the request takes the ordinary way: a request
        ``direct_environ`` leaves to gunicorn, a connection to close (not kept alive, its
        last request, the worker's last or stopping), an access log or request hooks to
        run."""
        request, data = peeked
        if (not request.keep_alive or not self.alive or not self.direct
                or len(self.keepalived_conns) >= self.max_keepalived):
            return False
        served, last = self._request_number(conn)
        if last or self.nr + 1 >= self.max_requests:
            return False
        environ = None
        if (request.method == b"GET" and request.target in STATIC_PATHS
                and not request.has_body):
            try:
                response = self._document_response(request.target.decode("latin-1"))
            except Exception:  # noqa: BLE001 - never on the loop: the app's path reports it
                return False
            if response is None:
                return False
        else:
            environ = direct_environ(data, request.length, conn.client, conn.server,
                                     self.direct_settings)
            if environ is None:
                return False
            environ["gunicorn.socket"] = conn.sock
        done: Future = Future()
        try:
            conn.init()  # the parser a kept-alive connection needs
            conn.sock.setblocking(True)  # as gthread's handle(): a whole sendall
            self._receive(conn, request.length)  # the bytes peeked above
            self.nr += 1
            keep = True
            if environ is not None:
                try:
                    response = direct_response(self.wsgi, environ, http_date())
                except Exception:  # noqa: BLE001 - answered as gunicorn answers it
                    self.log.exception("Error handling request %s %s",
                                       environ["REQUEST_METHOD"], environ["RAW_URI"])
                    util.write_error(conn.sock, 500, "Internal Server Error", "")
                    response, keep = None, False
            if response is not None:
                conn.sock.sendall(response)
            conn.requests_served = served
            done.set_result(keep)
        except OSError:
            done.set_result(False)
        self.finish_request(conn, done)
        return True

    @staticmethod
    def _receive(conn: TConn, length: int) -> None:
        remaining = length
        while remaining:  # all there: peeked
            chunk = conn.sock.recv(remaining)
            if not chunk:
                raise ConnectionError("closed")
            remaining -= len(chunk)

    def _document_response(self, path: str) -> bytes | None:
        if not self._documents_found:
            self._documents = find_documents(self.wsgi)
            self._documents_found = True
        found = self._documents.document(path) if self._documents is not None else None
        if found is None:
            return None
        body, headers = found
        # As gunicorn's default headers and CoalescingResponse's single send.
        head = keep_alive_head("200 OK", http_date()) + "".join(
            "%s: %s\r\n" % (k, v) for k, v in headers)
        return (head + "\r\n").encode("latin-1") + body

    def _request_number(self, conn: TConn) -> tuple[int, bool]:
        """The number of the request about to be served on ``conn``, and whether it is
        the connection's last (``keepalive_requests``)."""
        served = getattr(conn, "requests_served", 0) + 1
        return served, bool(self.keepalive_requests) and served >= self.keepalive_requests

    def handle_request(self, req, conn: TConn) -> bool:
        # The last request of its connection says so ("Connection: close") and gthread
        # closes the connection after the response.
        served, last = self._request_number(conn)
        conn.requests_served = served
        if last:
            req.force_close()
        return super().handle_request(req, conn)

    def _handle_inline(self, conn: TConn) -> None:
        conn.data_ready = True
        done: Future = Future()
        try:
            done.set_result(self.handle(conn))
        except Exception as exc:  # handle() answers its own errors: a guard, as the pool's
            done.set_exception(exc)
        self.finish_request(conn, done)

"""The provider's gunicorn worker: gthread, with protocol requests answered on the event loop.

gunicorn's ``gthread`` worker hands every request from its event loop to a pool thread
and the finished connection back again: a queue, a wake-up pipe, two ``epoll_ctl`` and a
GIL hand-off each way. For a small protocol request that hand-off is a good part of its
whole cost (docs/performance.md: about a third of the CPU of a discovery or JWKS request,
a tenth of a refresh grant, on two cores shared with the load).

This worker answers a request on the loop itself when two things hold:

- its path is one of the machine-to-machine endpoints (``INLINE_PATHS``): short,
  bounded work that never hashes a password and never renders a page;
- its bytes, headers and body, are all in the socket's receive buffer already
  (``complete_request``, on a ``MSG_PEEK``), so reading it cannot wait on the client.

Everything else (browser pages, the password checks behind them, a request still
arriving, chunked bodies, pipelined requests, TLS or HTTP/2 set up in gunicorn itself)
goes to the thread pool exactly as in ``gthread``. A slow or hostile client can
therefore hold a pool thread, as before, but never the loop.

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
from collections.abc import Collection
from concurrent.futures import Future

from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers.gthread import TConn, ThreadWorker

from .paths import API_PATHS, DOCUMENT_PATHS

INLINE_PATHS = frozenset(path.encode() for path in (*API_PATHS, *DOCUMENT_PATHS))
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


def complete_request(data: bytes, paths: Collection[bytes] = INLINE_PATHS) -> bool:
    """Whether ``data`` starts with one whole HTTP/1.x request for one of ``paths``.

    Strict on purpose: anything unusual (bare LF line ends, folded or duplicate framing
    headers, ``Transfer-Encoding``, HTTP/2's preface) answers False and the request takes
    the thread pool, where gunicorn's parser decides. True means gunicorn's parser will
    find the request line, the headers and ``Content-Length`` bytes of body in ``data``.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    line, _, fields = data[:end].partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        return False
    if parts[1].partition(b"?")[0] not in paths:
        return False
    length = None
    for field in fields.split(b"\r\n") if fields else ():
        name, colon, value = field.partition(b":")
        if not colon or not name or name != name.strip() or b"\n" in field or b"\r" in field:
            return False
        name = name.lower()
        if name == b"transfer-encoding":
            return False
        if name == b"content-length":
            value = value.strip()
            if length is not None or not value.isdigit():
                return False
            length = int(value)
    return len(data) >= end + 4 + (length or 0)


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
        # gthread builds its responses with wsgi.create(), which takes the module's
        # Response class (HTTP/2 passes its own). This process only runs this worker.
        wsgi.Response = CoalescingResponse
        super().init_process()

    def enqueue_req(self, conn: TConn) -> None:
        if self.inline and self._ready_inline(conn):
            self._handle_inline(conn)
        else:
            super().enqueue_req(conn)

    def _ready_inline(self, conn: TConn) -> bool:
        if conn.is_http2:
            return False
        # Bytes already read by the parser (a pipelined request) are not in the socket.
        if conn.parser is not None and conn.parser.unreader.buf.getvalue():
            return False
        try:
            data = conn.sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:  # nothing yet (EAGAIN), or a socket error the pool will report
            return False
        return complete_request(data)

    def handle_request(self, req, conn: TConn) -> bool:
        # The last request of its connection says so ("Connection: close") and gthread
        # closes the connection after the response.
        served = getattr(conn, "requests_served", 0) + 1
        conn.requests_served = served
        if self.keepalive_requests and served >= self.keepalive_requests:
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

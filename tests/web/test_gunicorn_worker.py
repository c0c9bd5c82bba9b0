"""The provider's gunicorn worker: which requests are answered on the event loop, and that
a slow client never holds the loop (idp/web/gunicorn_worker.py)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from idp.web.gunicorn_worker import (DEFAULT_KEEPALIVE_REQUESTS, complete_request,
                                     find_documents, keepalive_requests_setting,
                                     peek_request)

HERE = Path(__file__).resolve().parent
TIMEOUT = 10.0


# -- which bytes make a complete request --------------------------------------------------

@pytest.mark.parametrize("data", [
    b"GET /jwks.json HTTP/1.1\r\nHost: idp\r\n\r\n",
    b"GET /.well-known/openid-configuration?x=1 HTTP/1.1\r\nHost: idp\r\n\r\n",
    b"GET /userinfo HTTP/1.0\r\nAuthorization: Bearer t\r\n\r\n",
    b"POST /token HTTP/1.1\r\nHost: idp\r\nContent-Length: 5\r\n\r\nabcde",
    b"POST /introspect HTTP/1.1\r\ncontent-length:  3 \r\n\r\nabc",
    # A second request behind the first: the first is complete.
    b"GET /jwks.json HTTP/1.1\r\nHost: idp\r\n\r\nGET /jwks.json HTTP/1.1\r\n",
])
def test_complete_protocol_requests(data):
    assert complete_request(data)


@pytest.mark.parametrize("data", [
    b"",
    b"GET /jwks.json HTTP/1.1\r\nHost: idp\r\n",                      # headers still arriving
    b"POST /token HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",          # body still arriving
    b"GET /login HTTP/1.1\r\nHost: idp\r\n\r\n",                       # a browser page
    b"POST /login HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",             # a password check
    b"GET /token/../login HTTP/1.1\r\nHost: idp\r\n\r\n",              # not exactly the path
    b"POST /token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /token HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    b"POST /token HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /token HTTP/1.1\r\nContent-Length : 1\r\n\r\nx",             # space before colon
    b"GET /token HTTP/1.1\r\nHost: idp\r\n folded\r\n\r\n",            # obsolete line folding
    b"GET /token HTTP/1.1\r\nHost idp\r\n\r\n",                        # no colon
    b"GET /token HTTP/1.1\nHost: idp\n\n",                             # bare LF
    b"GET /token HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",                   # bare LF inside
    b"GET  /token HTTP/1.1\r\n\r\n",                                   # two spaces
    b"GET /token HTTP/2.0\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",                               # HTTP/2 preface
])
def test_anything_else_goes_to_the_pool(data):
    assert not complete_request(data)


# -- a real gunicorn with the worker ------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn_command(port: int, workers: int = 1, app: str = "threads_app:app",
                     options: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-k", "idp.web.gunicorn_worker.ProtocolWorker",
            "-w", str(workers), "--threads", "2", "--keep-alive", "30",
            "-b", f"127.0.0.1:{port}", *options, "--chdir", str(HERE), app]


@contextlib.contextmanager
def running_gunicorn(log_path: Path, workers: int = 1, env: dict | None = None,
                     app: str = "threads_app:app", options: tuple[str, ...] = ()):
    """gunicorn with the worker, serving ``app`` (of this directory) on a free port;
    yields the port."""
    port = free_port()
    log = log_path.open("wb")
    process = subprocess.Popen(gunicorn_command(port, workers, app, options),
                               stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start: " + log_path.read_text()[-2000:])
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as port:
        yield port


def connect(port: int, kept_alive: bool = True) -> socket.socket:
    """A connection to the worker; ``kept_alive``: one request answered on it already, so
    that the next ones arrive on a kept-alive connection (on a new one, the worker may
    accept it before its first bytes arrive, and then hands it to the pool)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if kept_alive:
        assert exchange(sock, b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n") == b"pool /first "
    return sock


def read_raw(sock: socket.socket, buffer: bytearray) -> bytes:
    """One whole response, status line and headers included."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in a body")
        rest += chunk
    buffer[:] = rest[length:]
    return head + b"\r\n\r\n" + rest[:length]


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    """One response from ``sock`` (status, body); bytes after it stay in ``buffer``."""
    head, _, body = read_raw(sock, buffer).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def exchange(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    status, body = read_response(sock, bytearray())
    assert status == 200
    return body


def test_protocol_requests_are_answered_on_the_loop(server):
    with connect(server) as sock:
        # The same kept-alive connection, several times: each request is complete on arrival.
        for _ in range(3):
            assert exchange(sock, b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n") \
                == b"loop /jwks.json "
        assert exchange(sock, b"POST /token HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n"
                              b"grant=abc") == b"loop /token grant=abc"


def test_browser_pages_are_answered_by_the_pool(server):
    with connect(server) as sock:
        assert exchange(sock, b"GET /login HTTP/1.1\r\nHost: t\r\n\r\n") == b"pool /login "
        assert exchange(sock, b"POST /login HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n"
                              b"a=b") == b"pool /login a=b"
        # and the connection is still served on the loop afterwards
        assert exchange(sock, b"GET /userinfo HTTP/1.1\r\nHost: t\r\n\r\n") \
            == b"loop /userinfo "


def test_a_slow_client_holds_a_pool_thread_not_the_loop(server):
    slow = connect(server, kept_alive=False)
    try:
        slow.sendall(b"POST /token HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        time.sleep(0.3)  # the worker has seen the incomplete request by now
        with connect(server) as other:
            started = time.monotonic()
            assert exchange(other, b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n") \
                == b"loop /jwks.json "
            assert time.monotonic() - started < 2
        slow.sendall(b"defghij")
        status, body = read_response(slow, bytearray())
        assert (status, body) == (200, b"pool /token abcdefghij")
    finally:
        slow.close()


def test_pipelined_requests_are_all_answered_in_order(server):
    with connect(server) as sock:
        sock.sendall(b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"POST /token HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok"
                     b"GET /login HTTP/1.1\r\nHost: t\r\n\r\n")
        buffer = bytearray()
        bodies = [read_response(sock, buffer)[1] for _ in range(3)]
        assert bodies[0] == b"loop /jwks.json "
        assert bodies[1].endswith(b" /token ok")
        assert bodies[2] == b"pool /login "


def test_a_malformed_protocol_request_is_refused_by_gunicorn(server):
    with connect(server) as sock:
        sock.sendall(b"POST /token HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")
        status, _ = read_response(sock, bytearray())
        assert status == 400
    with connect(server) as sock:  # and the worker goes on serving
        assert exchange(sock, b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n") \
            == b"loop /jwks.json "


# -- a connection is closed after so many requests ---------------------------------------

@pytest.fixture(scope="module")
def server_closing_after_3(tmp_path_factory):
    with running_gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log",
                          env={"GUNICORN_KEEPALIVE_REQUESTS": "3"}) as port:
        yield port


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.parametrize("last", [b"GET /jwks.json", b"GET /login"], ids=["loop", "pool"])
def test_the_last_request_of_a_connection_says_close_and_is_answered(
        server_closing_after_3, last):
    with connect(server_closing_after_3) as sock:              # request 1
        assert exchange(sock, b"GET /userinfo HTTP/1.1\r\nHost: t\r\n\r\n") \
            == b"loop /userinfo "                              # request 2: still kept alive
        sock.sendall(last + b" HTTP/1.1\r\nHost: t\r\n\r\n")   # request 3
        answer = read_until_closed(sock)                       # ends with the connection
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"\r\nconnection: close" in head.lower()
    assert body.endswith(last.split(b" ")[1] + b" ")


def test_a_new_connection_is_served_after_the_limit(server_closing_after_3):
    for _ in range(2):
        with connect(server_closing_after_3) as sock:
            exchange(sock, b"GET /userinfo HTTP/1.1\r\nHost: t\r\n\r\n")
            sock.sendall(b"GET /userinfo HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_until_closed(sock).endswith(b"loop /userinfo ")


def test_below_the_default_limit_a_connection_stays_open(server):
    with connect(server) as sock:
        for _ in range(10):
            sock.sendall(b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n")
            buffer = bytearray()
            assert read_response(sock, buffer) == (200, b"loop /jwks.json ")


@pytest.mark.parametrize("raw, expected", [
    (None, DEFAULT_KEEPALIVE_REQUESTS), ("", DEFAULT_KEEPALIVE_REQUESTS),
    ("0", 0), (" 250 ", 250)])
def test_keepalive_requests_setting(raw, expected):
    environ = {} if raw is None else {"GUNICORN_KEEPALIVE_REQUESTS": raw}
    assert keepalive_requests_setting(environ) == expected


@pytest.mark.parametrize("raw", ["-1", "ten", "1.5"])
def test_a_wrong_keepalive_requests_setting_is_refused(raw):
    with pytest.raises(ValueError, match="GUNICORN_KEEPALIVE_REQUESTS"):
        keepalive_requests_setting({"GUNICORN_KEEPALIVE_REQUESTS": raw})


def test_a_wrong_setting_stops_gunicorn_at_start(tmp_path):
    # The master binds its socket before it checks the worker's settings, so it may
    # listen for a moment: what counts is that it exits, and says why.
    done = subprocess.run(gunicorn_command(free_port()), capture_output=True, text=True,
                          timeout=60, env={**os.environ, "GUNICORN_KEEPALIVE_REQUESTS": "ten"})
    assert done.returncode != 0
    assert "GUNICORN_KEEPALIVE_REQUESTS must be a whole number, not 'ten'" in done.stderr


def test_the_date_header_is_formatted_once_a_second(monkeypatch):
    import email.utils

    from idp.web import gunicorn_worker

    calls = []
    monkeypatch.setattr(gunicorn_worker, "_gunicorn_http_date",
                        lambda ts: calls.append(ts) or email.utils.formatdate(
                            ts, localtime=False, usegmt=True))
    monkeypatch.setattr(gunicorn_worker, "_date_cache", (0, ""))
    clock = [1_700_000_000.2]
    monkeypatch.setattr(gunicorn_worker.time, "time", lambda: clock[0])
    first = gunicorn_worker.http_date()
    clock[0] = 1_700_000_000.9
    assert gunicorn_worker.http_date() == first == "Tue, 14 Nov 2023 22:13:20 GMT"
    clock[0] = 1_700_000_001.0
    assert gunicorn_worker.http_date() == "Tue, 14 Nov 2023 22:13:21 GMT"
    assert calls == [1_700_000_000, 1_700_000_001]
    assert gunicorn_worker.http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"


# -- the public documents, answered without gunicorn's parser ---------------------------

@pytest.mark.parametrize("data, keep_alive, has_body", [
    (b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n", True, False),
    (b"GET /jwks.json HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", True, False),
    (b"GET /jwks.json HTTP/1.1\r\nConnection: close\r\n\r\n", False, False),
    (b"GET /jwks.json HTTP/1.1\r\nConnection: Upgrade\r\n\r\n", False, False),
    (b"GET /jwks.json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False, False),
    (b"POST /token HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", True, True),
    (b"POST /token HTTP/1.1\r\nContent-Length: 0\r\n\r\n", True, False),
])
def test_what_the_peek_tells_of_a_request(data, keep_alive, has_body):
    request = peek_request(data + b"GET /next HTTP/1.1\r\n")
    assert request is not None and request.length == len(data)
    assert (request.keep_alive, request.has_body) == (keep_alive, has_body)


def test_the_documents_are_found_behind_flask_and_proxyfix_only(app):
    from werkzeug.middleware.proxy_fix import ProxyFix

    documents = find_documents(app)
    assert documents is not None
    app.wsgi_app = ProxyFix(app.wsgi_app)
    assert find_documents(app) is documents
    app.wsgi_app = lambda environ, start_response: documents(environ, start_response)
    assert find_documents(app) is None  # an unknown layer might change the answer


def test_a_document_is_what_the_provider_answers_to_a_get(app, browser):
    documents = find_documents(app)
    for path in ("/jwks.json", "/.well-known/openid-configuration",
                 "/.well-known/oauth-authorization-server"):
        body, headers = documents.document(path)
        answer = browser.get(path)
        assert answer.status_code == 200 and answer.data == body
        assert sorted(answer.headers.items()) == sorted(headers)
    assert documents.document("/token") is None


@pytest.fixture(scope="module")
def documents_server(tmp_path_factory):
    with running_gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log",
                          env={"GUNICORN_KEEPALIVE_REQUESTS": "6"},
                          app="documents_app:app") as port:
        yield port


def reached(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /reached HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        return int(read_raw(sock, bytearray()).partition(b"\r\n\r\n")[2])


def without_date(response: bytes) -> bytes:
    return b"\r\n".join(line for line in response.split(b"\r\n")
                         if not line.startswith(b"Date: "))


def documents_connection(port: int) -> socket.socket:
    """Kept alive: its first request is not a document's (a new connection's first bytes
    may arrive after the worker accepted it, and then go to the pool)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
    assert read_raw(sock, bytearray()).startswith(b"HTTP/1.1 404")
    return sock


def test_a_plain_get_of_a_document_never_reaches_the_app(documents_server):
    with documents_connection(documents_server) as sock:
        before = reached(documents_server)
        buffer = bytearray()
        answers = []
        for _ in range(3):
            sock.sendall(b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n")
            answers.append(read_raw(sock, buffer))
        assert reached(documents_server) == before
    assert all(a.startswith(b"HTTP/1.1 200 OK\r\n") for a in answers)
    assert all(a.endswith(b'"crv": "P-256"}]}') for a in answers)


def test_the_answer_is_byte_for_byte_the_ordinary_one(documents_server):
    with documents_connection(documents_server) as sock:
        buffer = bytearray()
        before = reached(documents_server)
        sock.sendall(b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n")
        fast = read_raw(sock, buffer)
        assert reached(documents_server) == before
        sock.sendall(b"GET /jwks.json?ordinary HTTP/1.1\r\nHost: t\r\n\r\n")
        ordinary = read_raw(sock, buffer)
        assert reached(documents_server) == before + 1
    assert without_date(fast) == without_date(ordinary)
    assert b"\r\nConnection: keep-alive\r\n" in fast and b"\r\nDate: " in fast


@pytest.mark.parametrize("request_bytes", [
    b"HEAD /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /jwks.json?x=1 HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /jwks.json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    b"GET /jwks.json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /jwks.json HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
    b"GET /token HTTP/1.1\r\nHost: t\r\n\r\n",
], ids=["head", "query", "close", "http1.0", "body", "not a document"])
def test_anything_else_reaches_the_app(documents_server, request_bytes):
    with documents_connection(documents_server) as sock:
        before = reached(documents_server)
        sock.sendall(request_bytes)
        if request_bytes.startswith(b"HEAD"):  # a length, and no body
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
        else:
            head = read_raw(sock, bytearray())
        assert head.startswith(b"HTTP/1")
        assert reached(documents_server) == before + 1


def test_a_document_that_fails_is_left_to_the_app_and_the_worker_goes_on(documents_server):
    with documents_connection(documents_server) as sock:
        buffer = bytearray()
        sock.sendall(b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_raw(sock, buffer).startswith(b"HTTP/1.1 500")  # the app's own answer
        sock.sendall(b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_raw(sock, buffer).startswith(b"HTTP/1.1 200")


def test_pipelined_document_requests_are_all_answered(documents_server):
    with documents_connection(documents_server) as sock:
        sock.sendall(b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n" * 2
                     + b"GET /other HTTP/1.1\r\nHost: t\r\n\r\n")
        buffer = bytearray()
        answers = [read_raw(sock, buffer) for _ in range(3)]
    assert [a.split(b" ", 2)[1] for a in answers] == [b"200", b"200", b"404"]


def test_the_last_request_of_a_connection_is_a_document_answered_with_close(
        documents_server):
    with documents_connection(documents_server) as sock:        # request 1
        buffer = bytearray()
        for _ in range(4):                                      # requests 2-5
            sock.sendall(b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n")
            assert b"Connection: keep-alive" in read_raw(sock, buffer)
        sock.sendall(b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n")     # request 6
        last = read_raw(sock, buffer)
        assert b"\r\nConnection: close\r\n" in last
        assert sock.recv(1) == b""


def test_with_an_access_log_every_request_goes_the_ordinary_way(tmp_path):
    access_log = tmp_path / "access.log"
    with running_gunicorn(tmp_path / "gunicorn.log", app="documents_app:app",
                          options=("--access-logfile", str(access_log))) as port:
        with documents_connection(port) as sock:
            before = reached(port)
            sock.sendall(b"GET /jwks.json HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_raw(sock, bytearray()).startswith(b"HTTP/1.1 200")
            assert reached(port) == before + 1
    assert '"GET /jwks.json HTTP/1.1" 200' in access_log.read_text()


# -- headers leave with the body ----------------------------------------------------------

class RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sent.append(bytes(data))


def respond(response_class, raw_request: bytes, status: str, headers: list, chunks: list):
    """Run one WSGI response through gunicorn's response class; the sends it made."""
    from gunicorn.config import Config
    from gunicorn.http import wsgi
    from gunicorn.http.parser import RequestParser

    cfg = Config()
    request = next(RequestParser(cfg, iter([raw_request]), ("127.0.0.1", 40000)))
    sock = RecordingSocket()
    response, _ = wsgi.create(request, sock, ("127.0.0.1", 40000), ("127.0.0.1", 8000), cfg,
                              response_class=response_class)
    response.start_response(status, headers)
    for chunk in chunks:
        response.write(chunk)
    response.close()
    return sock.sent


GET = b"GET /jwks.json HTTP/1.1\r\nHost: idp\r\n\r\n"


@pytest.mark.parametrize("raw, status, headers, chunks, sends, gunicorns", [
    # One small body: one send, where gunicorn makes two.
    (GET, "200 OK", [("Content-Length", "5")], [b"hello"], 1, 2),
    # Several chunks of a known length: the headers ride with the first.
    (GET, "200 OK", [("Content-Length", "4")], [b"ab", b"cd"], 2, 3),
    # No body (a redirect): the headers, at close.
    (GET, "302 Found", [("Location", "/x"), ("Content-Length", "0")], [], 1, 1),
    # HEAD: the body is dropped, the headers still go.
    (b"HEAD /jwks.json HTTP/1.1\r\nHost: idp\r\n\r\n", "200 OK",
     [("Content-Length", "5")], [b"hello"], 1, 1),
    # Chunked transfer: gunicorn's own framing, headers first.
    (GET, "200 OK", [], [b"ab", b"cd"], 4, 4),
])
def test_responses_are_byte_identical_to_gunicorns_in_fewer_sends(
        monkeypatch, raw, status, headers, chunks, sends, gunicorns):
    from gunicorn import util
    from gunicorn.http import wsgi

    from idp.web.gunicorn_worker import CoalescingResponse

    monkeypatch.setattr(util, "http_date", lambda *_: "Mon, 23 Nov 2026 12:00:00 GMT")
    ours = respond(CoalescingResponse, raw, status, headers, chunks)
    theirs = respond(wsgi.Response, raw, status, headers, chunks)
    assert b"".join(ours) == b"".join(theirs)
    assert (len(ours), len(theirs)) == (sends, gunicorns)

"""A protocol request answered without gunicorn's parser, environ and response
(idp/web/direct.py): the same environ and the same bytes as gunicorn's, or the request
is left to gunicorn."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from idp.web.direct import (DirectResponseError, DirectSettings, direct_environ,
                            direct_response)
from idp.web.gunicorn_worker import peek_request

from .test_gunicorn_worker import (RecordingSocket, read_raw, respond, running_gunicorn,
                                   without_date)

PEER = ("127.0.0.1", 40000)
OUTSIDE_PEER = ("10.1.2.3", 40000)
SERVER = ("127.0.0.1", 8000)
DATE = "Mon, 23 Nov 2026 12:00:00 GMT"
# Objects, not values: compared by what they hold below, or not at all.
OBJECTS = {"wsgi.input", "wsgi.errors", "wsgi.file_wrapper", "gunicorn.socket",
           "wsgi.early_hints"}


def config(**settings) -> Config:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return cfg


def gunicorns_environ(raw: bytes, peer=PEER, cfg: Config | None = None) -> dict:
    cfg = cfg or Config()
    request = next(RequestParser(cfg, iter([raw]), peer))
    _, environ = wsgi.create(request, RecordingSocket(), peer, SERVER, cfg)
    environ["wsgi.multithread"] = True  # as gthread's handle_request
    return environ


def ours(raw: bytes, peer=PEER, cfg: Config | None = None) -> dict | None:
    return direct_environ(raw, len(raw), peer, SERVER, DirectSettings(cfg or Config()))


def comparable(environ: dict) -> dict:
    values = {k: v for k, v in environ.items() if k not in OBJECTS}
    values["body"] = environ["wsgi.input"].read()
    return values


TOKEN = (b"POST /token HTTP/1.1\r\nHost: idp.example:8443\r\n"
         b"Authorization: Basic YTpi\r\nContent-Type: application/x-www-form-urlencoded\r\n"
         b"Content-Length: 29\r\n\r\ngrant_type=client_credentials")


@pytest.mark.parametrize("raw, peer", [
    (TOKEN, PEER),
    (b"GET /userinfo HTTP/1.1\r\nHost: idp\r\nAuthorization: Bearer abc.def\r\n\r\n", PEER),
    (b"HEAD /userinfo HTTP/1.1\r\nHost: idp\r\n\r\n", PEER),
    # A query, percent-encoded, kept as it came.
    (b"GET /userinfo?a=%20b&c=d HTTP/1.1\r\nHost: idp\r\n\r\n", PEER),
    # Repeated fields are joined with a comma; spaces around values are dropped; an
    # empty value is kept.
    (b"POST /introspect HTTP/1.1\r\nAccept: a/b\r\naccept:  c/d \r\nX-Empty:\r\n"
     b"Content-Length: 0\r\n\r\n", PEER),
    # No Host: SERVER_NAME from the listening socket.
    (b"POST /revoke HTTP/1.1\r\nContent-Length: 3\r\n\r\nx=y", PEER),
    # Behind the trusted proxy (gunicorn trusts 127.0.0.1 by default): https.
    (b"POST /token HTTP/1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 1.2.3.4\r\n"
     b"Content-Length: 0\r\n\r\n", PEER),
    (b"POST /token HTTP/1.1\r\nX-Forwarded-Proto: http\r\nContent-Length: 0\r\n\r\n", PEER),
    (b"POST /token HTTP/1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n"
     b"Content-Length: 0\r\n\r\n", PEER),
    # From anyone else, the scheme headers are ignored.
    (b"POST /token HTTP/1.1\r\nX-Forwarded-Proto: https\r\nContent-Length: 0\r\n\r\n",
     OUTSIDE_PEER),
    (b"POST /token HTTP/1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n"
     b"Content-Length: 0\r\n\r\n", OUTSIDE_PEER),
], ids=["token", "userinfo", "head", "query", "repeated", "no host", "https", "http",
        "https twice", "untrusted", "untrusted, disagreeing"])
def test_the_environ_is_gunicorns(raw, peer):
    mine = ours(raw, peer)
    assert mine is not None
    assert comparable(mine) == comparable(gunicorns_environ(raw, peer))
    assert set(gunicorns_environ(raw, peer)) - set(mine) == {"gunicorn.socket",
                                                              "wsgi.early_hints"}


def test_the_scheme_headers_and_trusted_addresses_are_gunicorns_settings():
    raw = (b"POST /token HTTP/1.1\r\nX-Scheme: secure\r\nX-Forwarded-Proto: https\r\n"
           b"Content-Length: 0\r\n\r\n")
    cfg = config(secure_scheme_headers={"X-SCHEME": "secure"},
                 forwarded_allow_ips="10.0.0.0/8")
    assert ours(raw, OUTSIDE_PEER, cfg)["wsgi.url_scheme"] == "https"
    assert gunicorns_environ(raw, OUTSIDE_PEER, cfg)["wsgi.url_scheme"] == "https"
    assert ours(raw, PEER, cfg)["wsgi.url_scheme"] == "http"  # 127.0.0.1 not trusted here


def test_the_body_is_read_from_the_request_only():
    raw = TOKEN + b"POST /token HTTP/1.1\r\n"  # the next request, pipelined
    request = peek_request(raw)
    environ = direct_environ(raw, request.length, PEER, SERVER, DirectSettings(Config()))
    assert environ["wsgi.input"].read() == b"grant_type=client_credentials"


@pytest.mark.parametrize("raw", [
    b"PUT /token HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    b"get /token HTTP/1.1\r\n\r\n",
    b"GET /userinfo HTTP/1.0\r\n\r\n",
    b"GET /userinfo#top HTTP/1.1\r\n\r\n",
    b"GET /userinfo?\xc3\xa9 HTTP/1.1\r\n\r\n",
    b"GET //userinfo HTTP/1.1\r\n\r\n",
    b"GET /userinfo HTTP/1.1\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n",   # ambiguous name
    b"GET /userinfo HTTP/1.1\r\nX Y: z\r\n\r\n",
    b"GET /userinfo HTTP/1.1\r\nNoColon\r\n\r\n",
    b"GET /userinfo HTTP/1.1\r\nX: a\x01b\r\n\r\n",                    # control character
    b"GET /userinfo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"POST /token HTTP/1.1\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\n",
    b"POST /token HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    b"POST /token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    # Disagreeing scheme headers from the trusted proxy: gunicorn answers 400.
    b"POST /token HTTP/1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
], ids=["method", "lower-case method", "http/1.0", "fragment", "not ascii", "//",
        "underscore", "space in name", "no colon", "control", "two hosts",
        "two content types", "expect", "chunked", "disagreeing schemes"])
def test_what_gunicorn_must_decide_is_left_to_it(raw):
    assert ours(raw) is None


def test_gunicorns_limits_and_settings_are_respected(monkeypatch):
    many = b"GET /userinfo HTTP/1.1\r\n" + b"X: y\r\n" * 5 + b"\r\n"
    assert ours(many) is not None
    assert ours(many, cfg=config(limit_request_fields=4)) is None
    long_field = b"GET /userinfo HTTP/1.1\r\nX: " + b"y" * 200 + b"\r\n\r\n"
    assert ours(long_field, cfg=config(limit_request_field_size=100)) is None
    assert ours(b"GET /userinfo?" + b"q" * 200 + b" HTTP/1.1\r\n\r\n",
                cfg=config(limit_request_line=100)) is None
    assert ours(TOKEN, cfg=config(proxy_protocol="v1")) is None
    assert direct_environ(TOKEN, len(TOKEN), "", "/run/idp.sock",
                          DirectSettings(Config())) is None  # a Unix socket
    monkeypatch.setenv("SCRIPT_NAME", "/idp")
    assert ours(TOKEN) is None


# -- the response -------------------------------------------------------------------------

def app_answering(status: str, headers: list, chunks: list):
    def app(environ, start_response):
        start_response(status, headers)
        return chunks
    return app


def direct_bytes(raw: bytes, app) -> bytes:
    return direct_response(app, ours(raw), DATE)


USERINFO = b"GET /userinfo HTTP/1.1\r\nHost: idp\r\n\r\n"
JSON = [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
        ("X-Frame-Options", "DENY")]


@pytest.mark.parametrize("raw, status, headers, chunks", [
    (TOKEN, "200 OK", [*JSON, ("Content-Length", "11")], [b'{"a": "b"}\n']),
    (TOKEN, "400 BAD REQUEST", [*JSON, ("Content-Length", "2")], [b"{}"]),
    (USERINFO, "401 Unauthorized",
     [("WWW-Authenticate", 'Bearer error="invalid_token"'), ("Content-Length", "0")], []),
    # Several chunks.
    (TOKEN, "200 OK", [("Content-Length", "4")], [b"ab", b"", b"cd"]),
    # HEAD: the length of the body, not the body.
    (b"HEAD /userinfo HTTP/1.1\r\nHost: idp\r\n\r\n", "200 OK",
     [("Content-Length", "5")], [b"hello"]),
    # No content on a 204: no length either.
    (TOKEN, "204 No Content", [("Content-Length", "0")], []),
    # Hop-by-hop headers are gunicorn's to set.
    (TOKEN, "200 OK", [("Keep-Alive", "timeout=5"), ("Content-Length", "2")], [b"ok"]),
    # A value with spaces around it.
    (TOKEN, "200 OK", [("X-Padded", "  v "), ("Content-Length", "2")], [b"ok"]),
], ids=["json", "error", "no body", "chunks", "head", "204", "hop-by-hop", "padded"])
def test_the_response_is_byte_for_byte_gunicorns(monkeypatch, raw, status, headers, chunks):
    from gunicorn import util

    monkeypatch.setattr(util, "http_date", lambda *_: DATE)
    gunicorns = b"".join(respond(wsgi.Response, raw, status, headers, chunks))
    assert direct_bytes(raw, app_answering(status, headers, chunks)) == gunicorns
    # And again, with every header line already checked once.
    assert direct_bytes(raw, app_answering(status, headers, chunks)) == gunicorns


def test_a_body_without_a_length_is_sent_with_its_length():
    answer = direct_bytes(TOKEN, app_answering("200 OK", [], [b"ab", b"cd"]))
    assert answer.endswith(b"\r\nContent-Length: 4\r\n\r\nabcd")


def test_what_write_sent_comes_before_the_iterable():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Length", "4")])
        write(b"ab")
        return [b"cd"]
    assert direct_bytes(TOKEN, app).endswith(b"\r\n\r\nabcd")


def test_the_iterable_is_closed_even_when_it_fails():
    closed = []

    class Failing:
        def __iter__(self):
            yield b"a"
            raise RuntimeError("broken")

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "1")])
        return Failing()

    with pytest.raises(RuntimeError):
        direct_bytes(TOKEN, app)
    assert closed == [True]


@pytest.mark.parametrize("status, headers, chunks", [
    ("200", [], []),                                        # no reason phrase: fine...
    ("20 OK", [], []),
    ("200 OK\r\nX: y", [], []),
    ("200 OK", [("X-Bad Name", "v")], []),
    ("200 OK", [("X-Split", "a\r\nInjected: yes")], []),
    ("200 OK", [("Content-Length", "x")], []),
    ("200 OK", [("Content-Length", "5")], [b"abc"]),       # shorter than announced
    ("200 OK", [("Content-Length", "1")], [b"abc"]),        # longer
    ("200 OK", [("Connection", "upgrade"), ("Upgrade", "websocket")], []),
    ("200 OK", [("X-Not-A-Pair",)], []),
], ids=["no phrase", "short status", "status injection", "name", "value injection",
        "length", "short body", "long body", "upgrade", "not a pair"])
def test_an_answer_gunicorn_would_refuse_is_refused(status, headers, chunks):
    app = app_answering(status, headers, chunks)
    if status == "200":
        assert direct_bytes(TOKEN, app).startswith(b"HTTP/1.1 200\r\n")
        return
    with pytest.raises(DirectResponseError):
        direct_bytes(TOKEN, app)


def test_an_application_that_starts_no_response_is_refused():
    with pytest.raises(DirectResponseError):
        direct_bytes(TOKEN, lambda environ, start_response: [b"x"])


# -- in the worker ------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def direct_server(tmp_path_factory):
    with running_gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log",
                          app="direct_app:app") as port:
        yield port


def kept_alive(port: int) -> socket.socket:
    """A connection whose first request is answered already: the next ones are whole
    when the worker sees them."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
    read_raw(sock, bytearray())
    return sock


def ask(sock: socket.socket, raw: bytes, buffer: bytearray | None = None) -> bytes:
    sock.sendall(raw)
    return read_raw(sock, bytearray() if buffer is None else buffer)


def test_a_protocol_request_is_answered_directly_and_as_gunicorn_would(direct_server,
                                                                       tmp_path):
    with kept_alive(direct_server) as sock:
        direct = ask(sock, TOKEN)
    assert direct.endswith(b"direct grant_type=client_credentials")
    # The same request where nothing is answered directly (an access log is set).
    with running_gunicorn(tmp_path / "gunicorn.log", app="direct_app:app",
                          options=("--access-logfile", str(tmp_path / "access.log"))) as port:
        with kept_alive(port) as sock:
            ordinary = ask(sock, TOKEN)
    assert ordinary.endswith(b"parsed grant_type=client_credentials")
    assert without_date(direct).replace(b"direct", b"parsed") == without_date(ordinary)


def test_a_request_gunicorn_must_decide_takes_the_ordinary_way(direct_server):
    with kept_alive(direct_server) as sock:
        answer = ask(sock, b"POST /token HTTP/1.1\r\nHost: t\r\nX_Odd: 1\r\n"
                           b"Content-Length: 2\r\n\r\nab")
        assert answer.endswith(b"parsed ab")
        # The connection goes on, directly again.
        assert ask(sock, TOKEN).endswith(b"direct grant_type=client_credentials")


def test_pipelined_protocol_requests_are_answered_in_order(direct_server):
    with kept_alive(direct_server) as sock:
        sock.sendall(TOKEN + b"POST /introspect HTTP/1.1\r\nContent-Length: 3\r\n\r\nt=x"
                     + b"GET /login HTTP/1.1\r\nHost: t\r\n\r\n")
        buffer = bytearray()
        answers = [read_raw(sock, buffer) for _ in range(3)]
    assert answers[0].endswith(b" grant_type=client_credentials")
    assert answers[1].endswith(b" t=x")
    assert answers[2].endswith(b"parsed ")  # a browser page: never directly


def test_an_application_error_is_a_500_and_the_worker_goes_on(direct_server):
    with kept_alive(direct_server) as sock:
        sock.sendall(b"POST /revoke HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nfail")
        answer = b""
        while chunk := sock.recv(65536):  # and the connection is closed
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"fail" not in answer.partition(b"\r\n\r\n")[2]
    with kept_alive(direct_server) as sock:
        assert ask(sock, TOKEN).endswith(b"direct grant_type=client_credentials")


def test_the_input_is_a_readable_stream():
    environ = ours(TOKEN)
    assert isinstance(environ["wsgi.input"], io.BytesIO)
    assert environ["wsgi.input"].readline() == b"grant_type=client_credentials"


def test_access_logging_set_by_a_logging_configuration_turns_it_off(tmp_path):
    # Not --access-logfile: gunicorn's "gunicorn.access" logger, configured by a file.
    import json

    access_log = tmp_path / "access.log"
    config_file = tmp_path / "logging.json"
    config_file.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": []},
        "handlers": {"access": {"class": "logging.FileHandler",
                                "filename": str(access_log)}},
        "loggers": {"gunicorn.access": {"level": "INFO", "handlers": ["access"],
                                        "propagate": False}}}))
    with running_gunicorn(tmp_path / "gunicorn.log", app="direct_app:app",
                          options=("--log-config-json", str(config_file))) as port:
        with kept_alive(port) as sock:
            answer = ask(sock, TOKEN)
    assert answer.endswith(b"parsed grant_type=client_credentials")
    assert '"POST /token HTTP/1.1" 200' in access_log.read_text()

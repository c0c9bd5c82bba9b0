"""The production server (``idp serve``) keeps answering other clients while some
connections misbehave: clients that pipeline requests and never read the answers, and
clients that send their headers a line at a time (slowloris)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

pytestmark = [pytest.mark.live_server, pytest.mark.slow]

DISCOVERY = "/.well-known/openid-configuration"
WORST_ACCEPTABLE = 1.0  # seconds for another client's request


def open_connection(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up at once
    return sock


def slowest_answer(url: str, seconds: float) -> float:
    """The longest time a well-behaved client waited, over ``seconds`` of requests."""
    worst = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        response = requests.get(url + DISCOVERY, timeout=10)
        assert response.status_code == 200
        worst = max(worst, time.monotonic() - started)
        time.sleep(0.05)
    return worst


def test_clients_that_pipeline_and_never_read_delay_no_one(start_provider, live):
    server = start_provider(workers=2)
    request = f"GET {DISCOVERY} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    attackers = [open_connection(live.port) for _ in range(4)]
    try:
        for sock in attackers:
            sock.setblocking(False)
            sent = 0
            # As many pipelined requests as the socket takes, answers never read.
            for _ in range(2000):
                try:
                    sent += sock.send(request)
                except BlockingIOError:
                    break
            assert sent > 0
        assert slowest_answer(server.url, seconds=4) < WORST_ACCEPTABLE
    finally:
        for sock in attackers:
            sock.close()


def test_clients_that_send_their_headers_slowly_delay_no_one(start_provider, live):
    server = start_provider(workers=2)
    attackers = [open_connection(live.port) for _ in range(60)]
    stop = threading.Event()

    def drip() -> None:
        for sock in attackers:
            sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        while not stop.wait(1.0):
            for sock in attackers:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")  # one header line a second, never done
                except OSError:
                    pass  # the server gave up on it: as it should, eventually
    dripping = threading.Thread(target=drip, daemon=True)
    dripping.start()
    try:
        time.sleep(1.5)  # every connection has started its request
        assert slowest_answer(server.url, seconds=5) < WORST_ACCEPTABLE
    finally:
        stop.set()
        dripping.join(timeout=5)
        for sock in attackers:
            sock.close()


def test_a_chunked_body_with_a_bad_chunk_size_is_a_client_error(start_provider, live):
    server = start_provider(workers=1)
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as sock:
        sock.sendall(b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\nzz\r\ngrant_type=x\r\n0\r\n\r\n")
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 4"), status_line
    assert requests.get(server.url + DISCOVERY, timeout=5).status_code == 200


def test_metrics_add_up_every_workers_requests(start_provider, live):
    server = start_provider(workers=2)
    for _ in range(20):
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    text = requests.get(server.url + "/metrics", timeout=5).text
    line = next(line for line in text.splitlines() if line.startswith(
        'idp_request_duration_seconds_count{endpoint="operations.healthz",method="GET"}'))
    assert float(line.rsplit(" ", 1)[1]) >= 20  # whichever worker answered each

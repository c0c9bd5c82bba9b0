"""How kept-alive connections spread over gunicorn's workers, with and without the
provider worker's cap on requests per connection (``GUNICORN_KEEPALIVE_REQUESTS``).

    .venv/bin/python bench/keepalive_balance.py                    # caps 0 and 100, 12 trials
    .venv/bin/python bench/keepalive_balance.py --caps 0,100,1000 --trials 8 --settle 1

Each trial starts gunicorn (``idp.web.gunicorn_worker.ProtocolWorker``, two workers, four
threads) on this file's WSGI app, which spends 2 ms of CPU per request under the GIL,
like a page. Six client threads, one kept-alive connection each, send requests for a
few seconds; each answer names the worker that served it. With ``--settle 0`` the
clients connect as soon as the port opens, before the second worker may be ready, as a
reverse proxy does right after a restart: without the cap, all six connections then stay
on one worker, which serves everything on one core at half the throughput.

Prints, per cap, each trial's busiest worker share of the requests and the number of
requests served. docs/performance-history.md (eighth pass) has the figures.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from servers import free_port, port_open

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPIN_SECONDS = 0.002


def app(environ, start_response):
    """The WSGI app under test: 2 ms of CPU, then the worker's pid."""
    end = time.thread_time() + SPIN_SECONDS
    while time.thread_time() < end:
        pass
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def trial(cap: int, seconds: float, settle: float, clients: int) -> tuple[int, int]:
    """One run: (busiest worker's share of the requests in %, requests served)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "idp.web.gunicorn_worker.ProtocolWorker",
         "-w", "2", "--threads", "4", "--keep-alive", "75", "-b", f"127.0.0.1:{port}",
         "--chdir", str(HERE), "keepalive_balance:app"],
        cwd=ROOT, env={**os.environ, "GUNICORN_KEEPALIVE_REQUESTS": str(cap),
                       "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        # Polled often: with --settle 0 the clients connect as soon as the port opens.
        while not port_open("127.0.0.1", port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.05)
        time.sleep(settle)
        served: collections.Counter[bytes] = collections.Counter()
        lock = threading.Lock()
        stop = time.monotonic() + seconds

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            while time.monotonic() < stop:
                try:
                    conn.request("GET", "/page")
                    response = conn.getresponse()
                    worker = response.read()
                    with lock:
                        served[worker] += 1
                    if response.will_close:  # the cap: the next request reconnects
                        conn.close()
                except (OSError, http.client.HTTPException):
                    conn.close()
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        server.wait(timeout=15)
    total = sum(served.values())
    return (round(100 * max(served.values()) / total) if total else 0), total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--caps", default="0,100",
                        help="GUNICORN_KEEPALIVE_REQUESTS values, comma-separated (0: none)")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=6.0, help="load per trial")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds between the port opening and the first connection")
    parser.add_argument("--clients", type=int, default=6)
    args = parser.parse_args(argv)
    for cap in (int(c) for c in args.caps.split(",")):
        runs = [trial(cap, args.seconds, args.settle, args.clients)
                for _ in range(args.trials)]
        lopsided = sum(1 for share, _ in runs if share >= 90)
        print(f"cap {cap:5d}: busiest worker's share % (requests) "
              + " ".join(f"{share}({total})" for share, total in runs)
              + f"; {lopsided} of {len(runs)} trials with one worker serving ≥ 90 %",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

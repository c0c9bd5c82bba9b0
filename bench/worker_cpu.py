"""One gunicorn worker's CPU per request, gunicorn included, and where it goes.

    .venv/bin/python bench/worker_cpu.py                                 # every request kind
    .venv/bin/python bench/worker_cpu.py --kinds client_credentials,refresh --rounds 3
    .venv/bin/python bench/worker_cpu.py --kinds refresh --profile tottime   # a cProfile of the worker

``bench/inprocess.py`` measures the provider behind Flask's test client: gunicorn's own
work (its event loop, parser, environ, response) is not in it, and for a small protocol
request that work was as large as the provider's (docs/performance-history.md, tenth pass). This
starts the provider as production does (``gunicorn -c gunicorn.conf.py``, PostgreSQL,
Redis) with one worker, sends each kind of request from ``--threads`` kept-alive
connections, and reads the worker's user and system CPU from ``/proc`` around each
measured batch: no reference provider, no rounds against node, a few seconds per kind.

With ``--profile SORT``, the worker runs under cProfile (CPU time, every thread) from
its start to its exit, and the profile of everything it did (warm-ups included) is
printed; ``--dump FILE`` keeps it for pstats or snakeviz. Profiling slows the worker two
to six times, unevenly: read it for shares, and the figures without it for costs.
"""

from __future__ import annotations

import argparse
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

from httpclient import Connection
from servers import GUNICORN_CONF, OurProvider, ensure_postgres, ensure_redis
import procstat
import scenarios

KINDS = ("discovery", "client_credentials", "refresh", "introspection", "userinfo")

PROFILE_HOOKS = '''
exec(compile(open({conf!r}).read(), {conf!r}, "exec"))

import cProfile as _cProfile
import os as _os
import time as _time

_profile = None


def post_worker_init(worker):
    global _profile
    _profile = _cProfile.Profile(_time.process_time)
    _profile.enable()


def worker_exit(server, worker):
    if _profile is not None:
        _profile.disable()
        _profile.dump_stats({out!r})
'''


def request_kinds(target: scenarios.Target) -> dict:
    """Each kind of request, as a function of a connection and its thread's state."""
    token_url = target.endpoint("token_endpoint")
    signing_in = threading.Lock()  # one sign-in at a time per account

    def tokens(conn: Connection, state: dict) -> dict:
        if "tokens" not in state:
            with signing_in:
                state["tokens"] = scenarios.sign_in(conn, target, with_userinfo=False)
        return state["tokens"]

    def expect(response, status: int = 200):
        if response.status != status:
            raise RuntimeError(f"HTTP {response.status}: {response.data[:200]!r}")
        return response

    def discovery(conn, state):
        expect(conn.get(target.discovery_url))

    def client_credentials(conn, state):
        expect(conn.post_form(token_url, {"grant_type": "client_credentials"},
                              headers=target.service.auth))

    def refresh(conn, state):
        current = tokens(conn, state)
        answer = expect(conn.post_form(
            token_url, {"grant_type": "refresh_token",
                        "refresh_token": current["refresh_token"]},
            headers=target.web.auth)).json()
        state["tokens"] = {**current, **answer}

    def introspection(conn, state):
        expect(conn.post_form(target.endpoint("introspection_endpoint"),
                              {"token": tokens(conn, state)["access_token"]},
                              headers=target.web.auth))

    def userinfo(conn, state):
        expect(conn.get(target.endpoint("userinfo_endpoint"), headers={
            "Authorization": "Bearer " + tokens(conn, state)["access_token"]}))

    return {"discovery": discovery, "client_credentials": client_credentials,
            "refresh": refresh, "introspection": introspection, "userinfo": userinfo}


def cpu_ticks(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # utime, stime


def measure(issuer: str, worker: int, send, threads: int, requests: int,
            warmup: int) -> tuple[float, float, float]:
    """(user ms, system ms, requests per second) per request over ``requests``."""
    ready = threading.Barrier(threads + 1)
    failures: list[BaseException] = []

    def client() -> None:
        conn, state = Connection(issuer), {}
        try:
            for _ in range(warmup):
                send(conn, state)
            ready.wait()
            for _ in range(requests // threads):
                send(conn, state)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
            ready.abort()
        finally:
            conn.close()

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for thread in pool:
        thread.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    before, started = cpu_ticks(worker), time.monotonic()
    for thread in pool:
        thread.join()
    after, elapsed = cpu_ticks(worker), time.monotonic() - started
    if failures:
        raise RuntimeError(f"a client failed: {failures[0]!r}")
    done = threads * (requests // threads)
    hz = os.sysconf("SC_CLK_TCK")
    return ((after[0] - before[0]) / hz / done * 1000,
            (after[1] - before[1]) / hz / done * 1000, done / elapsed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"a subset of {','.join(KINDS)}")
    parser.add_argument("--requests", type=int, default=4000, help="measured per batch")
    parser.add_argument("--warmup", type=int, default=100, help="per thread, unmeasured")
    parser.add_argument("--threads", type=int, default=2, help="client threads")
    parser.add_argument("--rounds", type=int, default=2, help="batches of each kind, in turn")
    parser.add_argument("--profile", metavar="SORT",
                        help="profile the worker (cProfile, CPU time) and print it by SORT")
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--dump", metavar="FILE", help="keep the raw profile in FILE")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")

    ensure_postgres()
    ensure_redis()
    workdir = Path(tempfile.mkdtemp(prefix="worker-cpu-"))
    provider = OurProvider(workdir=workdir, workers=1, database="idp_worker_cpu", redis_db=11)
    profile_out = workdir / "worker.prof"
    if args.profile:
        conf = workdir / "gunicorn_profiled.conf.py"
        conf.write_text(PROFILE_HOOKS.format(conf=str(GUNICORN_CONF), out=str(profile_out)))
        provider.gunicorn_conf = conf
    provider.prepare()
    web, service = provider.create_clients()
    provider.create_user()
    provider.start()
    try:
        worker = procstat.descendants(provider.server.pid)[0]
        target = provider.target(web, service)
        senders = request_kinds(target)
        print(f"one worker (pid {worker}), {args.threads} client threads, "
              f"{args.requests} requests per batch; CPU ms per request"
              + (" (profiled)" if args.profile else ""))
        print(f"{'kind':20s} {'user':>7s} {'system':>7s} {'total':>7s} {'req/s':>7s}")
        for _ in range(args.rounds):
            for kind in kinds:
                user, system, rate = measure(provider.issuer, worker, senders[kind],
                                             args.threads, args.requests, args.warmup)
                print(f"{kind:20s} {user:7.3f} {system:7.3f} {user + system:7.3f} {rate:7.0f}",
                      flush=True)
    finally:
        provider.server.stop()
    if args.profile:
        deadline = time.monotonic() + 10
        while not profile_out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not profile_out.exists():
            print("the worker wrote no profile", file=sys.stderr)
            return 1
        if args.dump:
            Path(args.dump).write_bytes(profile_out.read_bytes())
        pstats.Stats(str(profile_out)).sort_stats(args.profile).print_stats(args.lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark suite of compte-usager: one command, bounded in time.

    .venv/bin/python bench/run.py                 # production setup: gunicorn + PostgreSQL + Redis
    .venv/bin/python bench/run.py --sqlite        # the default setup: SQLite, no Redis
    .venv/bin/python bench/run.py --smoke         # a few seconds per scenario (what .ci/run calls)

It starts what it needs (PostgreSQL and Redis if they are not running, our provider under
gunicorn on a fresh database ``idp_bench`` and Redis database 13, the reference node
``oidc-provider`` from bench/reference), measures the cost of one argon2id verification,
seeds the accounts, runs every scenario against both providers, then the growth runs,
and writes ``results.json`` and ``results.md`` into ``--out`` (default bench/results).

Exit status: 0 when every scenario ran without error (missed performance targets are
reported, not failed), 1 when a scenario had errors or a sign-in's password verification
went uncounted (bench/hash_meter.py), 2 when the suite could not run.
See docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hash_meter  # noqa: E402
import procstat  # noqa: E402
import report  # noqa: E402
import seed as seeding  # noqa: E402
from scenarios import SCENARIOS, HttpError, Target, run_load, sign_in  # noqa: E402
from servers import (ROOT, BackingCpu, OurProvider, StorageCounters, SuiteError,  # noqa: E402
                     ensure_postgres, ensure_redis, log, run, start_floor, start_reference,
                     start_signin_floor)
from httpclient import Connection  # noqa: E402

MAIN_ORDER = ["discovery", "jwks", "client_credentials", "refresh_token", "signin",
              "introspection", "userinfo"]
GROWTH_SCENARIOS = ["signin", "refresh_token"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark compte-usager against node oidc-provider.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--sqlite", action="store_true",
                        help="the SQLite default (one gunicorn worker, no Redis); no growth run")
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds per scenario, small concurrency, 1,000 and 10,000 "
                             "accounts; exit non-zero on any error")
    parser.add_argument("--duration", type=float, help="measured seconds per scenario "
                        "(default 20, smoke 2)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds before each "
                        "measurement (default 3, smoke 0.5)")
    parser.add_argument("--concurrency", type=int, help="concurrent client threads "
                        "(default 6, smoke 2)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default 2, 1 with --sqlite)")
    parser.add_argument("--accounts", help="comma-separated account counts for the growth "
                        "runs (default 1000,1000000; smoke 1000,10000); the first is the main run's")
    parser.add_argument("--scenarios", help=f"comma-separated subset of {','.join(MAIN_ORDER)}")
    parser.add_argument("--reference-only", action="store_true",
                        help="measure node oidc-provider only (to test the suite itself)")
    parser.add_argument("--no-reference", action="store_true", help="measure ours only")
    parser.add_argument("--profile", metavar="SCENARIOS", default="",
                        help="comma-separated scenarios during which to record a py-spy "
                             "profile of our workers (needs py-spy; written next to the "
                             "results)")
    parser.add_argument("--rounds", type=int,
                        help="each scenario's measured time is split into this many windows "
                             "per server, taken in turn (node, ours, ours again...), so that "
                             "the machine's drift falls on both sides of a ratio (default 3, "
                             "smoke 2)")
    parser.add_argument("--max-minutes", type=float,
                        help="hard limit for the whole run (default 40, smoke 5)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"),
                        help="directory of results.json and results.md")
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.duration = args.duration or (2.0 if smoke else 20.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if smoke else 3.0)
    args.concurrency = args.concurrency or (2 if smoke else 6)
    args.workers = args.workers or (1 if args.sqlite else 2)
    args.max_minutes = args.max_minutes or (5.0 if smoke else 40.0)
    args.rounds = max(1, args.rounds or (2 if smoke else 3))
    default_accounts = "1000,10000" if smoke else "1000,1000000"
    args.accounts = [int(a) for a in (args.accounts or default_accounts).split(",") if a]
    if args.sqlite:
        args.accounts = args.accounts[:1]  # growth is measured on PostgreSQL
    args.scenarios = args.scenarios.split(",") if args.scenarios else MAIN_ORDER
    unknown = set(args.scenarios) - set(MAIN_ORDER)
    if unknown:
        parser.error(f"unknown scenario(s): {sorted(unknown)}")
    return args


class Budget:
    def __init__(self, minutes: float) -> None:
        self.deadline = time.monotonic() + minutes * 60

    def check(self, need: float, what: str) -> None:
        left = self.deadline - time.monotonic()
        if left < need:
            raise SuiteError(f"time budget exhausted before {what} ({left:.0f}s left, "
                             f"{need:.0f}s needed): raise --max-minutes")


def measure_argon2(samples: int = 15) -> dict:
    """CPU and wall time of one argon2id verification with the provider's parameters."""
    from argon2 import PasswordHasher
    memory, time_cost, parallelism = seeding.argon2_parameters()
    hasher = PasswordHasher(memory_cost=memory, time_cost=time_cost, parallelism=parallelism)
    encoded = hasher.hash("correct horse battery staple")
    hasher.verify(encoded, "correct horse battery staple")  # warm the allocator
    cpu, wall = [], []
    for _ in range(samples):
        c0, w0 = time.thread_time(), time.perf_counter()
        hasher.verify(encoded, "correct horse battery staple")
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    cpu_s = statistics.median(cpu)
    cores = os.cpu_count() or 1
    return {"memory_kib": memory, "time_cost": time_cost, "parallelism": parallelism,
            "samples": samples, "cpu_ms": cpu_s * 1000, "wall_ms": statistics.median(wall) * 1000,
            "cpu_ms_min": min(cpu) * 1000, "cpu_ms_max": max(cpu) * 1000,
            "hash_bound_per_s": cores / cpu_s}


def machine_info() -> dict:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    node = shutil.which("node")
    node_version = run([node, "--version"], timeout=10, check=False).stdout.strip() if node else "?"
    return {"cores": os.cpu_count(), "cpu_model": model, "memory_gib": mem_kib / 1024 ** 2,
            "kernel": platform.release(), "python": platform.python_version(),
            "node": f"node {node_version}", "packages": package_versions()}


# What the provider's hot paths run on: nothing pins them (pyproject.toml gives ranges),
# and two runs are only comparable with the versions beside them.
MEASURED_PACKAGES = ("Flask", "Werkzeug", "Jinja2", "Authlib", "SQLAlchemy", "psycopg",
                     "redis", "hiredis", "gunicorn", "cryptography", "argon2-cffi",
                     "WTForms", "Flask-WTF", "Flask-Babel", "Flask-Login")


def package_versions() -> dict[str, str]:
    from importlib import metadata
    versions = {}
    for name in MEASURED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def source_state() -> dict:
    """The commit measured, and whether the provider's files differ from it (a run on
    a tree being edited measures whatever the workers loaded)."""
    head = run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], timeout=10, check=False)
    status = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", ".", ":!bench",
                  ":!docs"], timeout=10, check=False)
    changed = [line[3:] for line in status.stdout.splitlines() if line.strip()]
    return {"commit": head.stdout.strip() or None, "modified_files": len(changed),
            "modified_sample": changed[:10]}


class Measured:
    """A target with the processes whose CPU is charged to it."""

    def __init__(self, target: Target, cpu_fn, backing: BackingCpu | None, memory_fn,
                 counters: StorageCounters | None = None, workers_fn=None,
                 hash_meter_dir: Path | None = None) -> None:
        self.target = target
        # Where the server's processes count their password verifications' CPU.
        self.hash_meter_dir = hash_meter_dir
        # The server's worker processes: how evenly they share the CPU, and what to profile.
        self.workers_fn = workers_fn
        self.counters = counters
        self.cpu_fn = cpu_fn
        self.backing = backing
        self.memory_fn = memory_fn


def measure(measured: Measured, key: str, args, *, accounts: int | None,
            rate: float | None = None, concurrency: int | None = None,
            duration: float | None = None, warmup: float | None = None,
            profile_dir: Path | None = None) -> dict:
    scenario = SCENARIOS[key]
    marks: dict = {}
    profiler = None

    def read_hash_meter() -> tuple[int, int] | None:
        return hash_meter.read(measured.hash_meter_dir) if measured.hash_meter_dir else None

    def start() -> None:
        nonlocal profiler
        marks["counters0"] = measured.counters.sample() if measured.counters else {}
        marks["cpu0"] = measured.cpu_fn()
        marks["backing0"] = measured.backing.sample() if measured.backing else None
        marks["client0"] = time.process_time()
        marks["hash0"] = read_hash_meter()
        marks["machine0"] = procstat.machine_cpu()
        workers = measured.workers_fn() if measured.workers_fn else []
        marks["workers0"] = procstat.cpu_seconds_by_pid(workers)
        if profile_dir is not None and workers:
            profiler = start_profiler(profile_dir, key, workers, duration)

    def end() -> None:
        marks["cpu1"] = measured.cpu_fn()
        marks["backing1"] = measured.backing.sample() if measured.backing else None
        marks["client1"] = time.process_time()
        marks["hash1"] = read_hash_meter()
        marks["machine1"] = procstat.machine_cpu()
        marks["counters1"] = measured.counters.sample() if measured.counters else {}
        marks["workers1"] = procstat.cpu_seconds_by_pid(list(marks["workers0"]))

    concurrency = concurrency or args.concurrency
    duration = duration or args.duration
    warmup = args.warmup if warmup is None else warmup
    result = run_load(measured.target, scenario, concurrency=concurrency, warmup=warmup,
                      duration=duration, on_window_start=start, on_window_end=end,
                      rate=rate)
    if profiler is not None:
        finish_profiler(profiler)
    ops = result.ops or 1
    cpu = marks["cpu1"] - marks["cpu0"]
    backing = (BackingCpu.delta(marks["backing0"], marks["backing1"])
               if measured.backing else {})
    client = marks["client1"] - marks["client0"]
    busy = procstat.machine_busy_fraction(marks["machine0"], marks["machine1"])
    # What the rest of the machine did meanwhile (other people's tests, say), in cores.
    other = busy * (os.cpu_count() or 1) - (cpu + sum(backing.values()) + client) / result.seconds
    # All the load on one worker of two shows as 100 / 0 (docs/operations.md, keep-alive).
    worker_split = procstat.cpu_shares(marks["workers0"], marks["workers1"])
    row = {
        "key": key, "title": scenario.title, "unit": scenario.unit,
        "target": measured.target.name, "accounts": accounts,
        "mode": "closed" if rate is None else "fixed-rate",
        "scheduled_rate": rate, "concurrency": concurrency,
        "ops": result.ops, "seconds": round(result.seconds, 3),
        "requests_per_op": result.requests / ops,
        "throughput": result.throughput,
        "p50_ms": _ms(result.percentile(50)), "p90_ms": _ms(result.percentile(90)),
        "p99_ms": _ms(result.percentile(99)), "max_ms": _ms(result.percentile(100)),
        "errors": result.errors, "window_errors": result.window_errors,
        "error_samples": result.error_samples,
        "server_cpu_s": round(cpu, 3), "cpu_ms_per_op": cpu * 1000 / ops,
        "backing_cpu_ms_per_op": {k: v * 1000 / ops for k, v in backing.items()},
        "total_cpu_ms_per_op": (cpu + sum(backing.values())) * 1000 / ops,
        "storage_per_op": {k: (v - marks["counters0"].get(k, 0)) / ops
                           for k, v in marks["counters1"].items()},
        "client_cpu_ms_per_op": client * 1000 / ops,
        "machine_busy_pct": 100 * busy,
        "other_load_cores": max(0.0, other),
        "worker_cpu_pct": [round(share, 1) for share in worker_split],
    }
    if marks["hash0"] is not None:
        # The password verifications as the loaded server paid for them (thread CPU
        # inside argon2's verify, every worker): bench/hash_meter.py.
        row["hash_cpu_ms_per_op"] = (marks["hash1"][0] - marks["hash0"][0]) / 1e6 / ops
        row["hashes_per_op"] = (marks["hash1"][1] - marks["hash0"][1]) / ops
    log(f"{measured.target.name:5s} {key:18s} {row['mode']:10s} {row['throughput']:8.1f} op/s "
        f"p50 {row['p50_ms'] or 0:7.2f} ms  p99 {row['p99_ms'] or 0:7.2f} ms  "
        f"cpu {row['cpu_ms_per_op']:.3f} ms/op (+storage {row['total_cpu_ms_per_op']:.3f})  "
        f"errors {row['errors']}  machine {row['machine_busy_pct']:.0f}% "
        f"(others {row['other_load_cores']:.2f} cores)"
        + (f"  workers {'/'.join(f'{v:.0f}' for v in worker_split)} %"
           if len(worker_split) > 1 else ""))
    if result.error_samples:
        log(f"      first error: {result.error_samples[0]}")
    return row


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def start_profiler(directory: Path, key: str, pids: list[int], duration: float):
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        log("py-spy not installed: no profile (pip install -r bench/requirements.txt)")
        return None
    import subprocess
    directory.mkdir(parents=True, exist_ok=True)
    procs = []
    for pid in pids:
        out = directory / f"profile-{key}-{pid}.txt"
        cmd = [pyspy, "record", "--pid", str(pid), "--duration", str(max(1, int(duration))),
               "--format", "raw", "--rate", "200", "--nonblocking", "--output", str(out)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def finish_profiler(procs) -> None:
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            proc.kill()


def compute_checks(results: dict, args) -> None:
    rows = {(r["key"], r["target"], r["mode"]): r for r in results["scenarios"]
            if r["accounts"] in (args.accounts[0], None) and not r.get("growth_run")
            and not r.get("round_run")}
    checks = []

    def ratio(key: str, mode: str = "closed", minus: float = 0.0):
        ours, node = rows.get((key, "ours", mode)), rows.get((key, "node", mode))
        if not ours or not node or not node["cpu_ms_per_op"]:
            return None, ours, node
        return (ours["cpu_ms_per_op"] - minus) / node["cpu_ms_per_op"], ours, node

    def add(name: str, value, limit: str, ok):
        checks.append({"name": name, "value": value, "limit": limit, "ok": ok})

    argon = results.get("argon2") or {}
    hash_ms = argon.get("cpu_ms")
    value, ours, node = ratio("signin", minus=hash_ms or 0.0)
    for row in rows.values():
        if row["key"] == "signin" and row.get("hashes_per_op") is not None and (
                row["ops"] and not 0.5 <= row["hashes_per_op"] <= 1.5):
            # Each flow verifies one password (give or take the flows that straddle a
            # window's edge): none or two mean the meter, or the flow, is not measuring
            # what the report says.
            results["problems"].append(
                f"{row['target']}: {row['hashes_per_op']:.2f} password verifications per "
                "sign-in counted by bench/hash_meter.py, not 1")
    if ours:
        signin = {
            "ours_cpu_ms": ours["cpu_ms_per_op"], "hash_cpu_ms": hash_ms,
            "ours_cpu_minus_hash_ms": ours["cpu_ms_per_op"] - (hash_ms or 0),
            "hash_share_pct": 100 * hash_ms / ours["cpu_ms_per_op"] if hash_ms else None,
            "node_cpu_ms": node["cpu_ms_per_op"] if node else None,
            "ratio_minus_hash": value,
            "ours_flows_per_s": ours["throughput"],
            "ours_requests_per_flow": ours.get("requests_per_op"),
            "node_requests_per_flow": node.get("requests_per_op") if node else None,
            "ours_flows_per_min": ours["throughput"] * 60,
            "hash_bound_per_s": argon.get("hash_bound_per_s"),
            "fraction_of_limit_pct": (100 * ours["throughput"] / argon["hash_bound_per_s"]
                                      if argon.get("hash_bound_per_s") else None),
        }
        results["signin"] = signin
        node_ms = node["cpu_ms_per_op"] if node and node["cpu_ms_per_op"] else None
        if ours.get("hash_cpu_ms_per_op") is not None:
            # The verification as the loaded server paid for it (bench/hash_meter.py):
            # the target's subtraction read with the hash timed where it ran.
            in_server = ours["hash_cpu_ms_per_op"]
            signin["hash_in_server_ms"] = in_server
            signin["hashes_per_flow"] = ours.get("hashes_per_op")
            signin["ratio_minus_hash_in_server"] = (
                (ours["cpu_ms_per_op"] - in_server) / node_ms if node_ms else None)
        nohash = rows.get(("signin", "ours-nohash", "closed"))
        if nohash:
            signin["nohash_cpu_ms"] = nohash["cpu_ms_per_op"]
            signin["nohash_ratio"] = nohash["cpu_ms_per_op"] / node_ms if node_ms else None
            signin["hash_in_flow_ms"] = ours["cpu_ms_per_op"] - nohash["cpu_ms_per_op"]
        floor = rows.get(("signin", "floor", "closed"))
        if floor:
            signin["floor_cpu_ms"] = floor["cpu_ms_per_op"]
            signin["floor_ratio"] = floor["cpu_ms_per_op"] / node_ms if node_ms else None
            if nohash and floor["cpu_ms_per_op"]:
                # What the provider's layers cost over the bare stack, both without a hash
                # and both Python on the same machine: steadier from round to round than
                # any ratio to node.
                signin["nohash_over_floor"] = nohash["cpu_ms_per_op"] / floor["cpu_ms_per_op"]
        floor_hash = rows.get(("signin", "floor-hash", "closed"))
        if floor_hash:
            # The check below, applied to the floor that verifies the password: what no
            # provider on this stack can go under on this machine.
            signin["floor_hash_cpu_ms"] = floor_hash["cpu_ms_per_op"]
            signin["floor_hash_in_flow_ms"] = (floor_hash["cpu_ms_per_op"] - floor["cpu_ms_per_op"]
                                               if floor else None)
            signin["floor_check_ratio"] = (
                (floor_hash["cpu_ms_per_op"] - (hash_ms or 0)) / node_ms if node_ms else None)
            if floor_hash.get("hash_cpu_ms_per_op") is not None:
                in_server = floor_hash["hash_cpu_ms_per_op"]
                signin["floor_hash_in_server_ms"] = in_server
                signin["floor_check_in_server_ratio"] = (
                    (floor_hash["cpu_ms_per_op"] - in_server) / node_ms if node_ms else None)
    if value is not None:
        add("Sign-in: (our CPU per flow − one argon2id verification) / node's",
            f"{value:.2f}×", "≤ 2×", value <= 2)
    half = rows.get(("signin", "ours", "fixed-rate"))
    if half:
        add(f"Sign-in p99 at half capacity ({half['scheduled_rate']:.1f} flows/s)",
            f"{half['p99_ms']:.0f} ms" if half["p99_ms"] is not None else "–", "< 250 ms",
            half["p99_ms"] is not None and half["p99_ms"] < 250)
    for key, label in (("client_credentials", "client_credentials: CPU per grant vs node"),
                       ("refresh_token", "refresh_token: CPU per grant vs node"),
                       ("discovery", "Discovery: CPU per request vs node"),
                       ("jwks", "JWKS: CPU per request vs node")):
        value, _, _ = ratio(key)
        if value is not None:
            add(label, f"{value:.2f}×", "≤ 2×", value <= 2)
    errors = sum(r["errors"] for r in results["scenarios"])
    add("Errors, all scenarios and both providers", str(errors), "0", errors == 0)
    for growth in results.get("growth_summary", []):
        add(f"Growth of {growth['title']} CPU (incl. storage), "
            f"{growth['low']:,} → {growth['high']:,} accounts",
            f"{growth['change_pct']:+.1f} %", "≤ +10 %", growth["change_pct"] <= 10)
    results["checks"] = checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = Budget(args.max_minutes)
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    mode = "sqlite" if args.sqlite else "production"
    results: dict = {
        "meta": {
            "suite": "compte-usager benchmark", "format": 1, "mode": mode, "smoke": args.smoke,
            "started": started.isoformat(timespec="seconds"),
            "command": "python bench/run.py " + " ".join(shlex.quote(a) for a in
                                                         (argv if argv is not None else sys.argv[1:])),
            "machine": machine_info(),
            "source": source_state(),
            "signin_accounts": "random seeded accounts",
            "settings": {"duration": args.duration, "warmup": args.warmup,
                         "rounds": args.rounds,
                         "concurrency": args.concurrency, "workers": args.workers,
                         "accounts": args.accounts, "scenarios": args.scenarios},
        },
        "targets": {}, "scenarios": [], "memory": {}, "growth": [], "problems": [],
        "scenario_titles": {k: SCENARIOS[k].title for k in args.scenarios},
    }
    ours_provider: OurProvider | None = None
    node_server = None
    measured: dict[str, Measured] = {}
    status = 0
    try:
        if not args.sqlite and not args.reference_only:
            ensure_postgres()
            ensure_redis()
        log("timing one argon2id verification")
        results["argon2"] = measure_argon2()
        log(f"argon2id verify: {results['argon2']['cpu_ms']:.1f} ms CPU; hash-bound limit "
            f"{results['argon2']['hash_bound_per_s']:.1f} sign-ins/s")

        if not args.no_reference:
            secret = "bench-" + os.urandom(12).hex()
            node_server, node_target = start_reference(workdir, secret)
            node_target.seeded_accounts = args.accounts[0]
            node_target.seed_password = seeding.SEED_PASSWORD
            measured["node"] = Measured(node_target, node_server.cpu_seconds, None,
                                        node_server.memory)
            results["targets"]["node"] = {
                "issuer": node_target.issuer, "version": node_target.version,
                "setup": "one node process, in-memory adapter, devInteractions"}
            log(f"reference up: {node_target.version} at {node_target.issuer}")

        if not args.reference_only:
            ours_provider = OurProvider(workdir, sqlite=args.sqlite, workers=args.workers,
                                        hash_meter_dir=workdir / "hash-meter-ours")
            log(f"preparing our provider ({mode}): database, migrations, clients, user")
            ours_provider.prepare()
            web, service = ours_provider.create_clients()
            ours_provider.create_user()
            added = seeding.seed(ours_provider.database_url, args.accounts[0])
            log(f"seeded {added} accounts")
            ours_provider.start()
            ours_target = ours_provider.target(web, service)
            database = None if args.sqlite else ours_provider.database
            backing = BackingCpu(database, redis=not args.sqlite)
            counters = StorageCounters(database,
                                       None if args.sqlite else ours_provider.redis_db)
            measured["ours"] = Measured(ours_target, ours_provider.server.cpu_seconds,
                                        backing, ours_provider.server.memory, counters,
                                        ours_provider.server.worker_pids,
                                        ours_provider.hash_meter_dir)
            worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
            setup = (f"gunicorn -c gunicorn.conf.py -w {args.workers} ({worker_class}), "
                     + ("SQLite, in-process store" if args.sqlite else
                        "PostgreSQL database idp_bench, Redis db 13"))
            results["targets"]["ours"] = {"issuer": ours_target.issuer,
                                          "version": ours_target.version, "setup": setup}
            log(f"ours up: {ours_target.version} at {ours_target.issuer}")
            results["memory"]["ours"] = {"at_rest": ours_provider.server.memory()}
            # Every sign-in is as a random seeded account (distinct citizens, spread over
            # the table: what makes the growth runs meaningful). Check that one can.
            ours_target.seeded_accounts = args.accounts[0]
            ours_target.seed_password = seeding.SEED_PASSWORD
            probe = Connection(ours_target.issuer)
            try:
                sign_in(probe, ours_target)
            except HttpError as exc:
                raise SuiteError(f"a seeded account cannot sign in ({exc}): bench/seed.py "
                                 "must fill what the provider now expects of an account") from exc
            finally:
                probe.close()

        for name, m in measured.items():
            results["memory"].setdefault(name, {"at_rest": m.memory_fn()})

        per_scenario = args.warmup + args.duration + 15
        for key in args.scenarios:
            with contextlib.ExitStack() as companions:
                # The floors (and the sign-in on a provider without a hash) are measured
                # in the same rounds as ours and node: their ratios share the drift.
                extra = start_companions(key, companions, ours_provider, args, budget,
                                         workdir)
                results["scenarios"].extend(measure_rounds(
                    [*measured.values(), *extra], key, args, budget, results,
                    profile_dir=out_dir if key in args.profile.split(",") else None))
            if key == "signin":
                for name, m in measured.items():
                    closed = next(r for r in reversed(results["scenarios"])
                                  if r["target"] == name and r["key"] == key
                                  and not r.get("round_run"))
                    rate = closed["throughput"] / 2
                    if rate > 0:
                        # Twice as long: a p99 wants a few hundred flows.
                        budget.check(per_scenario + args.duration,
                                     f"half-capacity sign-in on {name}")
                        results["scenarios"].append(measure(
                            m, key, args, rate=rate, concurrency=args.concurrency * 2,
                            duration=2 * args.duration,
                            accounts=args.accounts[0] if name == "ours" else None))

        for name, m in measured.items():
            results["memory"][name]["after"] = m.memory_fn()

        if "ours" in measured and len(args.accounts) > 1:
            run_growth(results, measured["ours"], ours_provider, args, budget, workdir)

        compute_checks(results, args)
        if any(r["errors"] for r in results["scenarios"]) or results["problems"]:
            status = 1
    except (SuiteError, HttpError) as exc:
        log(f"FAILED: {exc}")
        results["problems"].append(f"suite stopped: {exc}")
        status = 2
    except KeyboardInterrupt:
        results["problems"].append("interrupted")
        status = 2
    finally:
        for server in (ours_provider.server if ours_provider else None, node_server):
            if server is not None:
                server.stop()
                if server.log_path and server.log_path.exists():
                    shutil.copy(server.log_path, out_dir / server.log_path.name)
        shutil.rmtree(workdir, ignore_errors=True)
        results["meta"]["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(
            timespec="seconds")
        results["meta"]["elapsed_s"] = time.monotonic() - t0
        results["meta"]["exit_status"] = status
        (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (out_dir / "results.md").write_text(report.render(results) + "\n")
        log(f"wrote {out_dir / 'results.json'} and {out_dir / 'results.md'} "
            f"in {time.monotonic() - t0:.0f}s (exit {status})")
    return status


def start_companions(key: str, stack: contextlib.ExitStack, provider: OurProvider | None,
                     args, budget: Budget, workdir: Path) -> list[Measured]:
    """The servers measured beside ours and node for scenario ``key``, started now and
    stopped by ``stack``: gunicorn serving the discovery document statically (the floor
    under discovery), and for the sign-in its floor (bench/signin_floor) and our provider
    with a negligible password hash."""
    if provider is None:
        return []
    started = []
    if key == "discovery":
        server, target = start_floor(provider)
        stack.callback(server.stop)
        started.append(Measured(target, server.cpu_seconds, None, server.memory,
                                workers_fn=server.worker_pids))
    if key == "signin" and not args.sqlite:
        budget.check(150, "the sign-in's floors and the provider without a hash")
        for verify_password in (False, True):
            meter = workdir / "hash-meter-floor" if verify_password else None
            server, target = start_signin_floor(provider, verify_password=verify_password,
                                                meter=meter)
            stack.callback(server.stop)
            target.seeded_accounts = args.accounts[0]
            target.seed_password = seeding.SEED_PASSWORD
            started.append(Measured(target, server.cpu_seconds, None, server.memory,
                                    workers_fn=server.worker_pids, hash_meter_dir=meter))
        started.append(start_without_hash(args, stack, workdir))
    return started


def measure_rounds(targets: list[Measured], key: str, args, budget: Budget, results: dict,
                   *, profile_dir: Path | None = None) -> list[dict]:
    """Scenario ``key`` on every target, in ``args.rounds`` windows each, taken in turn
    (A B C A B C ...). On a shared virtual machine the CPU per operation of the same code
    drifts by tens of per cent within minutes; in turns, the drift falls on every side of
    a ratio. Returns each window's row (``round_run``) and, per target, their merge."""
    windows: dict[str, list[dict]] = {m.target.name: [] for m in targets}
    duration = args.duration / args.rounds
    hash_ms = []
    for index in range(args.rounds):
        if key == "signin" and any(m.target.name == "ours" for m in targets):
            # The hash the sign-in check subtracts, timed in each round too.
            hash_ms.append(measure_argon2(samples=5)["cpu_ms"])
        for m in targets:
            name = m.target.name
            warmup = args.warmup if index == 0 else min(1.0, args.warmup)
            budget.check(warmup + duration + 15, f"{key} on {name}")
            windows[name].append(measure(
                m, key, args, accounts=args.accounts[0] if name.startswith("ours") else None,
                duration=duration, warmup=warmup,
                profile_dir=profile_dir if index == 0 and name == "ours" else None))
    if hash_ms:
        argon = results["argon2"]
        argon.setdefault("at_start_cpu_ms", argon["cpu_ms"])
        argon["rounds_cpu_ms"] = hash_ms
        argon["cpu_ms"] = statistics.mean(hash_ms)
        argon["hash_bound_per_s"] = (os.cpu_count() or 1) * 1000 / argon["cpu_ms"]
    rows = []
    for name, measured_rows in windows.items():
        if len(measured_rows) == 1:
            rows.extend(measured_rows)
            continue
        for row in measured_rows:
            row["round_run"] = True
        rows.extend(measured_rows)
        merged = _merge_rounds(measured_rows)
        merged.pop("round_run")
        rows.append(merged)
    return rows


# argon2id's smallest parameters (8 KiB, one pass, one lane): a verification costs
# microseconds, so that a sign-in's CPU is what the flow costs without the hash.
NEGLIGIBLE_ARGON2 = (8, 1, 1)


def start_without_hash(args, stack: contextlib.ExitStack, workdir: Path) -> Measured:
    """Our provider once more, its accounts' hashes (and settings) at
    :data:`NEGLIGIBLE_ARGON2`: the sign-in's CPU without the password verification,
    measured rather than computed. Subtracting one verification timed alone undercounts
    what the hash costs inside a loaded server (docs/performance-history.md, seventh pass)."""
    memory, passes, lanes = NEGLIGIBLE_ARGON2
    provider = OurProvider(workdir / "nohash", sqlite=args.sqlite, workers=args.workers,
                           database="idp_bench_nohash", redis_db=11, extra_env={
                               "IDP_PASSWORDS__ARGON2_MEMORY_KIB": str(memory),
                               "IDP_PASSWORDS__ARGON2_TIME_COST": str(passes),
                               "IDP_PASSWORDS__ARGON2_PARALLELISM": str(lanes)})
    provider.workdir.mkdir(exist_ok=True)
    log("preparing a provider whose accounts have a negligible argon2id hash")
    provider.prepare()
    web, service = provider.create_clients()
    provider.create_user()
    seeding.seed(provider.database_url, args.accounts[0], argon2=NEGLIGIBLE_ARGON2)
    stack.callback(provider.server.stop)
    provider.start()
    target = provider.target(web, service)
    target.name = "ours-nohash"
    target.seeded_accounts = args.accounts[0]
    target.seed_password = seeding.SEED_PASSWORD
    database = None if args.sqlite else provider.database
    return Measured(target, provider.server.cpu_seconds,
                    BackingCpu(database, redis=not args.sqlite), provider.server.memory,
                    workers_fn=provider.server.worker_pids)


# Growth runs alternate between the two providers (A B A B ...): on a shared virtual
# machine the CPU per operation of the same code drifts by 10-20 % within minutes, which
# sequential runs would charge to the account count.
GROWTH_ROUNDS = 2


def run_growth(results: dict, ours: Measured, provider: OurProvider, args, budget: Budget,
               workdir: Path) -> None:
    """For each further account count, a second provider (same code and settings) on a
    database seeded with that many accounts, measured alternately with the first one."""
    growth_rows = []
    keys = [k for k in GROWTH_SCENARIOS if k in args.scenarios]
    for accounts in args.accounts[1:]:
        budget.check(90 + accounts / 20000, f"a provider with {accounts} accounts")
        big_provider = OurProvider(workdir / f"growth-{accounts}", sqlite=args.sqlite,
                                   workers=args.workers, database=f"idp_bench_{accounts}",
                                   redis_db=14)
        big_provider.workdir.mkdir(exist_ok=True)
        log(f"preparing a second provider with {accounts:,} accounts")
        try:
            big_provider.prepare()
            web, service = big_provider.create_clients()
            big_provider.create_user()
            t = time.monotonic()
            added = seeding.seed(big_provider.database_url, accounts)
            log(f"seeded {added:,} accounts in {time.monotonic() - t:.1f}s")
            results.setdefault("seeding", []).append(
                {"accounts": accounts, "added": added, "seconds": time.monotonic() - t})
            big_provider.start()
            target = big_provider.target(web, service)
            target.seeded_accounts = accounts
            target.seed_password = seeding.SEED_PASSWORD
            database = None if args.sqlite else big_provider.database
            big = Measured(target, big_provider.server.cpu_seconds,
                           BackingCpu(database, redis=not args.sqlite),
                           big_provider.server.memory,
                           StorageCounters(database, None if args.sqlite else 14),
                           big_provider.server.worker_pids)
            for key in keys:
                small_rows, big_rows = [], []
                for _ in range(GROWTH_ROUNDS):
                    for measured_, rows, count in ((ours, small_rows, args.accounts[0]),
                                                   (big, big_rows, accounts)):
                        budget.check(args.warmup + args.duration + 15,
                                     f"growth {key} at {count}")
                        row = measure(measured_, key, args, accounts=count)
                        row["growth_run"] = True
                        results["scenarios"].append(row)
                        rows.append(row)
                small, large = _merge_rounds(small_rows), _merge_rounds(big_rows)
                growth_rows.append(_growth_row(small, None))
                growth_rows.append(_growth_row(large, small))
        finally:
            big_provider.server.stop()
    results["growth"] = growth_rows
    results["growth_rounds"] = GROWTH_ROUNDS
    results["growth_summary"] = [
        {"key": r["key"], "title": r["title"], "low": args.accounts[0], "high": r["accounts"],
         "change_pct": r["change_pct"]}
        for r in growth_rows if r.get("change_pct") is not None]


def _merge_rounds(rows: list[dict]) -> dict:
    """Several measurements of one scenario as one: per-operation figures over all their
    operations, the throughput over all their time, the worst p50 and p99, the errors
    added up."""
    ops = sum(r["ops"] for r in rows) or 1
    seconds = sum(r["seconds"] for r in rows) or 1

    def per_op(field: str) -> float:
        return sum((r.get(field) or 0) * r["ops"] for r in rows) / ops

    def per_op_dict(field: str) -> dict:
        keys = {k for r in rows for k in (r.get(field) or {})}
        return {k: sum((r.get(field) or {}).get(k, 0) * r["ops"] for r in rows) / ops
                for k in keys}

    merged = dict(rows[0])
    merged.update({
        "ops": sum(r["ops"] for r in rows), "seconds": round(seconds, 3),
        "throughput": sum(r["ops"] for r in rows) / seconds,
        "p50_ms": max((r["p50_ms"] or 0) for r in rows),
        "p90_ms": max((r.get("p90_ms") or 0) for r in rows),
        "p99_ms": max((r["p99_ms"] or 0) for r in rows),
        "max_ms": max((r.get("max_ms") or 0) for r in rows),
        "errors": sum(r["errors"] for r in rows),
        "window_errors": sum(r.get("window_errors") or 0 for r in rows),
        "server_cpu_s": round(sum(r.get("server_cpu_s") or 0 for r in rows), 3),
        "cpu_ms_per_op": per_op("cpu_ms_per_op"),
        "total_cpu_ms_per_op": per_op("total_cpu_ms_per_op"),
        "client_cpu_ms_per_op": per_op("client_cpu_ms_per_op"),
        "requests_per_op": per_op("requests_per_op"),
        **({field: per_op(field) for field in ("hash_cpu_ms_per_op", "hashes_per_op")}
           if "hash_cpu_ms_per_op" in rows[0] else {}),
        "backing_cpu_ms_per_op": per_op_dict("backing_cpu_ms_per_op"),
        "storage_per_op": per_op_dict("storage_per_op"),
        "machine_busy_pct": statistics.mean(r.get("machine_busy_pct") or 0 for r in rows),
        "other_load_cores": statistics.mean(r.get("other_load_cores") or 0 for r in rows),
        "cpu_ms_per_op_by_round": [round(r["cpu_ms_per_op"], 3) for r in rows],
    })
    return merged


def _growth_row(row: dict, base: dict | None) -> dict:
    change = None
    if base and base["total_cpu_ms_per_op"]:
        change = 100 * (row["total_cpu_ms_per_op"] / base["total_cpu_ms_per_op"] - 1)
    return {k: row[k] for k in ("key", "title", "accounts", "throughput", "p50_ms", "p99_ms",
                                "errors", "cpu_ms_per_op", "total_cpu_ms_per_op")} | {
        "change_pct": change}


if __name__ == "__main__":
    sys.exit(main())

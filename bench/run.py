"""The benchmark of compte-usager, in its production setup, against its floors.

    .venv/bin/python bench/run.py            # full run (about 10 minutes)
    .venv/bin/python bench/run.py --smoke    # a few seconds per scenario (CI)

It starts PostgreSQL and Redis if they are not running, serves the provider with
``idp serve`` (2 workers; the full run first measures the sign-in with 4 and 8 threads
per worker and keeps the better) on a schema of its own, seeded with accounts, and node
oidc-provider (bench/reference) for reference. Each scenario's window charges to it the
CPU of the provider's processes, of PostgreSQL and of Redis. Then the growth: the same
scenarios on a second provider whose schema holds 1,000,000 accounts, measured in turn
with the first. It writes bench/results/results.md (the tables of docs/performance.md)
and results.json.

Exit status: 0 when no scenario had an error (a floor missed is reported, not failed),
1 when one had, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios import SCENARIOS, FlowError, Target, run_load, sign_in  # noqa: E402
from services import (PASSWORD, REDIRECT_URI, ROOT, Provider, SuiteError,  # noqa: E402
                      drop_stale_schemas, ensure_services, log, machine_ticks,
                      postgres_seconds, processes, redis_seconds, schema_name,
                      start_reference)

ORDER = ["discovery", "jwks", "client_credentials", "refresh", "signin", "userinfo",
         "introspection"]
GROWTH = ["signin", "refresh", "userinfo"]
# Operations per second per core (1000 / total CPU ms per operation) the issue asks for.
FLOORS = {"signin": 20, "client_credentials": 1000, "userinfo": 1000, "introspection": 1000,
          "refresh": 250}
HALF_CAPACITY_P99_MS = 250
GROWTH_LIMIT_PCT = 10
# Other processes' load (in cores) above which the comparison of thread counts says nothing.
BUSY_CORES = 0.25


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true",
                   help="short windows, 1,000 and 10,000 accounts, 4 threads: exits "
                        "non-zero on any error")
    p.add_argument("--duration", type=float, help="measured seconds per window (15; smoke 1)")
    p.add_argument("--warmup", type=float, help="seconds before each window (2; smoke 0.3)")
    p.add_argument("--concurrency", type=int,
                   help="client threads, closed loop; the sign-in uses twice as many (8; smoke 4)")
    p.add_argument("--workers", type=int, default=2, help="idp serve --workers (2)")
    p.add_argument("--threads", type=int,
                   help="idp serve --threads (default: the better of 4 and 8; smoke 4)")
    p.add_argument("--accounts", help="the main run's account count, then the growth's "
                                      "(1000,1000000; smoke 1000,10000)")
    p.add_argument("--scenarios", help=f"a subset of {','.join(ORDER)}")
    p.add_argument("--no-reference", action="store_true", help="leave node oidc-provider out")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    smoke = args.smoke
    args.duration = args.duration or (1.0 if smoke else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if smoke else 2.0)
    args.concurrency = args.concurrency or (4 if smoke else 8)
    args.threads_given = args.threads is not None or smoke
    args.threads = args.threads or 4
    args.accounts = [int(a) for a in (args.accounts or ("1000,10000" if smoke
                                                        else "1000,1000000")).split(",")]
    args.scenarios = args.scenarios.split(",") if args.scenarios else ORDER
    if set(args.scenarios) - set(ORDER):
        p.error(f"unknown scenarios: {sorted(set(args.scenarios) - set(ORDER))}")
    return args


class Measured:
    """A target and the processes charged to it."""

    def __init__(self, target: Target, server, storage: bool) -> None:
        self.target, self.server, self.storage = target, server, storage

    def sample(self) -> dict:
        procs = processes()
        busy, total = machine_ticks()
        return {"provider": self.server.cpu_seconds(procs),
                "postgresql": postgres_seconds(self.server.database, procs)
                if self.storage else 0.0,
                "redis": redis_seconds(procs) if self.storage else 0.0,
                "client": time.process_time(), "busy": busy, "total": total}


def measure(m: Measured, key: str, args, *, accounts: int | None = None,
            rate: float | None = None, duration: float | None = None) -> dict:
    """One window of scenario ``key`` on ``m``: a row of the report."""
    marks = {}
    concurrency = args.concurrency * (2 if key == "signin" else 1)
    load = run_load(m.target, SCENARIOS[key], concurrency=concurrency, warmup=args.warmup,
                    duration=duration or args.duration, rate=rate,
                    on_start=lambda: marks.update(before=m.sample()),
                    on_end=lambda: marks.update(after=m.sample()))
    before, after = marks["before"], marks["after"]
    spent = {k: after[k] - before[k] for k in ("provider", "postgresql", "redis")}
    machine = (after["busy"] - before["busy"]) / max(1, after["total"] - before["total"])
    ours = sum(spent.values()) + after["client"] - before["client"]
    row = {"key": key, "target": m.target.name, "accounts": accounts, "ops": load.ops,
           "seconds": load.seconds, "cpu_s": spent, "concurrency": concurrency,
           "rate": rate, "errors": load.errors, "error_samples": load.error_samples,
           "p50_ms": load.percentile(50), "p99_ms": load.percentile(99),
           "other_cores": max(0.0, machine * (os.cpu_count() or 1) - ours / load.seconds)}
    finish(row)
    log(f"{m.target.name:4s} {key:18s} {row['throughput']:8.1f}/s  p50 {row['p50_ms'] or 0:6.1f} "
        f"p99 {row['p99_ms'] or 0:6.1f} ms  CPU {row['total_ms']:.3f} ms/op "
        f"({row['per_core']:,.0f}/s per core)  errors {row['errors']}  "
        f"others {row['other_cores']:.2f} cores" + (f"  rate {rate:.1f}/s" if rate else ""))
    for sample in load.error_samples[:2]:
        log(f"  error: {sample}")
    return row


def finish(row: dict) -> None:
    """The per-operation figures of a row from its totals."""
    ops = max(1, row["ops"])
    row["throughput"] = row["ops"] / row["seconds"]
    row["ms"] = {k: 1000 * v / ops for k, v in row["cpu_s"].items()}
    row["total_ms"] = sum(row["ms"].values())
    row["per_core"] = 1000 / row["total_ms"] if row["total_ms"] else 0.0


def merge(rows: list[dict]) -> dict:
    """Windows of one scenario on one target as one row: CPU over all their operations,
    the worst percentiles, the errors added up."""
    merged = dict(rows[0], ops=sum(r["ops"] for r in rows),
                  seconds=sum(r["seconds"] for r in rows),
                  errors=sum(r["errors"] for r in rows),
                  error_samples=sum((r["error_samples"] for r in rows), []),
                  p50_ms=max(r["p50_ms"] or 0 for r in rows),
                  p99_ms=max(r["p99_ms"] or 0 for r in rows),
                  other_cores=sum(r["other_cores"] for r in rows) / len(rows),
                  cpu_s={k: sum(r["cpu_s"][k] for r in rows) for k in rows[0]["cpu_s"]})
    finish(merged)
    return merged


def reference(workdir: Path, results: dict) -> Measured | None:
    """node oidc-provider, or None (and why, in the results) when it cannot run here."""
    secret = "bench-" + os.urandom(12).hex()
    try:
        server, version = start_reference(workdir, secret)
    except SuiteError as exc:
        log(f"no reference: {exc}")
        results["problems"].append(f"node oidc-provider not measured: {str(exc)[:300]}")
        return None
    results["meta"]["reference"] = version
    target = Target("node", server.issuer, ("bench-web", secret), ("bench-service", secret),
                    REDIRECT_URI, service_scope="api", accounts=1000, password=PASSWORD)
    target.load_metadata()
    return Measured(target, server, storage=False)


def provider(workdir: Path, schema: str, accounts: int, args, threads: int,
             servers: list[Provider]) -> tuple[Provider, Measured]:
    """A provider prepared, started and checked; added to ``servers`` (which are cleaned
    up at the end) before anything can fail."""
    ours = Provider(workdir / schema, schema, accounts, workers=args.workers,
                    threads=threads)
    servers.append(ours)
    ours.prepare()
    ours.start()
    target = Target("ours", ours.server.issuer, ours.web, ours.service, REDIRECT_URI,
                    scope="openid profile email offline_access", accounts=accounts,
                    password=PASSWORD)
    target.load_metadata()
    sign_in(requests.Session(), target, "seed-0000000@bench.invalid")  # fails early, clearly
    return ours, Measured(target, ours.server, storage=True)


def choose_threads(ours: Provider, m: Measured, args, results: dict) -> None:
    """The sign-in with 8 and 4 threads per worker, in turn (8 4 8 4, windows of half the
    usual length); the server keeps the better throughput: 4 unless 8 does at least 5 %
    better (each thread may hold an argon2 buffer), and 4 when other processes used the
    machine meanwhile (more threads would only take a larger share from them)."""
    windows: dict[int, list[dict]] = {8: [], 4: []}
    for threads in (8, 4, 8, 4):
        ours.stop()
        ours.start(threads)
        windows[threads].append(measure(m, "signin", args, accounts=args.accounts[0],
                                        duration=args.duration / 2))
        windows[threads][-1]["rss_mib"] = ours.server.memory_mib()
    rows = {threads: merge(ws) | {"threads": threads, "rss_mib": max(w["rss_mib"] for w in ws)}
            for threads, ws in windows.items()}
    busy = max(r["other_cores"] for r in rows.values()) > BUSY_CORES
    best = 8 if rows[8]["throughput"] > 1.05 * rows[4]["throughput"] and not busy else 4
    results["threads"] = {"chosen": best, "busy": busy, "rows": list(rows.values())}
    if best != ours.threads:
        ours.stop()
        ours.start(best)
    log(f"threads per worker: {best}")


def growth(first: Measured, big: Measured, args, results: dict) -> None:
    """Each growth scenario on the two providers in turn (A B A B A B, windows of half
    the usual length; smoke: A B): the machine's drift over minutes falls on both sides."""
    rounds = 1 if args.smoke else 3
    for key in (k for k in GROWTH if k in args.scenarios):
        windows: dict[str, list[dict]] = {"small": [], "big": []}
        for _ in range(rounds):
            for name, m, accounts in (("small", first, args.accounts[0]),
                                      ("big", big, args.accounts[-1])):
                windows[name].append(measure(m, key, args, accounts=accounts,
                                             duration=args.duration / (2 - args.smoke)))
        small, large = merge(windows["small"]), merge(windows["big"])
        results["growth"].append({
            "key": key, "small": small, "big": large,
            "change_pct": 100 * (large["total_ms"] / small["total_ms"] - 1)})


def verdicts(results: dict) -> list[dict]:
    ours = {r["key"]: r for r in results["rows"] if r["target"] == "ours"}
    checks = []
    for key, floor in FLOORS.items():
        if key in ours:
            checks.append({"name": f"{SCENARIOS[key].title}: operations per second per core",
                           "value": f"{ours[key]['per_core']:,.0f}", "floor": f"≥ {floor:,}",
                           "ok": ours[key]["per_core"] >= floor})
    half = results.get("half_capacity")
    if half:
        checks.append({"name": f"Sign-in p99 at half capacity ({half['rate']:.1f} flows/s)",
                       "value": f"{_n(half['p99_ms'], 0)} ms",
                       "floor": f"< {HALF_CAPACITY_P99_MS} ms",
                       "ok": half["p99_ms"] is not None and half["p99_ms"] < HALF_CAPACITY_P99_MS})
    for g in results["growth"]:
        checks.append({"name": f"{SCENARIOS[g['key']].title}: total CPU per operation, "
                               f"{g['small']['accounts']:,} → {g['big']['accounts']:,} accounts",
                       "value": f"{g['change_pct']:+.1f} %", "floor": f"≤ +{GROWTH_LIMIT_PCT} %",
                       "ok": g["change_pct"] <= GROWTH_LIMIT_PCT})
    errors = error_count(results)
    checks.append({"name": "Errors, every scenario and window", "value": str(errors),
                   "floor": "0", "ok": errors == 0})
    return checks


def every_row(results: dict) -> list[dict]:
    return results["rows"] + results.get("threads", {}).get("rows", []) + \
        ([results["half_capacity"]] if results.get("half_capacity") else []) + \
        [w for g in results["growth"] for w in (g["small"], g["big"])]


def error_count(results: dict) -> int:
    return sum(r["errors"] for r in every_row(results))


def _n(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}f}"


def render(results: dict) -> str:
    meta = results["meta"]
    out = [f"# Benchmark results{' (smoke)' if meta['smoke'] else ''}", "",
           f"- {meta['started']}, {meta['elapsed_s']:.0f} s, `{meta['command']}`, "
           f"commit {meta['commit']}",
           f"- Machine: {meta['cores']} cores ({meta['cpu']}), Python {meta['python']}; "
           f"others' load averaged {meta['other_cores']:.2f} cores during the windows",
           f"- Ours: `idp serve --workers {meta['workers']} --threads {meta['threads']}` "
           f"(granian; {meta.get('rss_mib', 0):.0f} MiB resident after the scenarios), "
           f"PostgreSQL database `idp_bench` (a schema per provider), Redis db 14; argon2id "
           f"{meta['argon2']}; reference: {meta.get('reference', 'not measured')}",
           f"- Windows of {meta['duration']:g} s after {meta['warmup']:g} s of warm-up, "
           f"{meta['concurrency']} client threads ({2 * meta['concurrency']} for the sign-in); "
           f"sign-ins as random accounts among {meta['accounts'][0]:,}", ""]
    if results.get("threads"):
        rows = results["threads"]["rows"]
        out += ["Threads per worker (sign-in; memory: the provider's resident set, all "
                "processes): " + "; ".join(
            f"{r['threads']}: {r['throughput']:.1f} flows/s, {r['total_ms']:.1f} ms CPU, "
            f"p99 {_n(r['p99_ms'], 0)} ms, {r['rss_mib']:.0f} MiB" for r in rows)
            + f". Kept: {results['threads']['chosen']}"
            + (" (other processes used the machine: the default; compare on a quiet one)."
               if results["threads"]["busy"] else "."), ""]
    out += ["| Scenario | op/s | p50 ms | p99 ms | errors | CPU ms/op: provider | PostgreSQL "
            "| Redis | total | op/s per core | node: CPU ms/op | ours/node | others' load |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: |"]
    node = {r["key"]: r for r in results["rows"] if r["target"] == "node"}
    for r in (r for r in results["rows"] if r["target"] == "ours"):
        n = node.get(r["key"])
        out.append(f"| {SCENARIOS[r['key']].title} | {_n(r['throughput'], 1)} | "
                   f"{_n(r['p50_ms'], 1)} | {_n(r['p99_ms'], 1)} | {r['errors']} | "
                   f"{r['ms']['provider']:.3f} | {r['ms']['postgresql']:.3f} | "
                   f"{r['ms']['redis']:.3f} | {r['total_ms']:.3f} | {_n(r['per_core'], 1)} | "
                   + (f"{n['total_ms']:.3f} | {r['total_ms'] / n['total_ms']:.2f}× | "
                      if n and n["total_ms"] else "– | – | ") + f"{r['other_cores']:.2f} |")
    half = results.get("half_capacity")
    if half:
        out += ["", f"Sign-in at half capacity: {half['rate']:.1f} flows/s scheduled, "
                    f"{half['throughput']:.1f} done, p50 {_n(half['p50_ms'], 0)} ms, "
                    f"p99 {_n(half['p99_ms'], 0)} ms, {half['errors']} errors; others' "
                    f"load {half['other_cores']:.2f} cores."]
    if results["growth"]:
        out += ["", "| Growth (windows in turn) | accounts | op/s | CPU ms/op total "
                    "| PostgreSQL | accounts | op/s | CPU ms/op total | PostgreSQL | change |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for g in results["growth"]:
            s, b = g["small"], g["big"]
            out.append(f"| {SCENARIOS[g['key']].title} | {s['accounts']:,} | "
                       f"{_n(s['throughput'], 1)} | {s['total_ms']:.3f} | "
                       f"{s['ms']['postgresql']:.3f} | {b['accounts']:,} | "
                       f"{_n(b['throughput'], 1)} | {b['total_ms']:.3f} | "
                       f"{b['ms']['postgresql']:.3f} | {g['change_pct']:+.1f} % |")
    out += ["", "| Floor | measured | floor | verdict |", "| --- | ---: | ---: | --- |"]
    out += [f"| {c['name']} | {c['value']} | {c['floor']} | {'pass' if c['ok'] else '**FAIL**'} |"
            for c in results["checks"]]
    if results["problems"]:
        out += ["", "Problems:"] + [f"- {p}" for p in results["problems"]]
    samples = [s for r in every_row(results) for s in r["error_samples"]]
    if samples:
        out += ["", "First errors:"] + [f"- `{s}`" for s in samples[:5]]
    return "\n".join(out) + "\n"


def argon2_description(database_url: str) -> str:
    """The seeded accounts' argon2id parameters and one verification's CPU time here."""
    import psycopg
    from argon2 import PasswordHasher
    with psycopg.connect(database_url) as conn:
        encoded = conn.execute("SELECT password_hash FROM users WHERE email = %s",
                               ("seed-0000000@bench.invalid",)).fetchone()[0]
    times = []
    for _ in range(5):
        started = time.thread_time()
        PasswordHasher().verify(encoded, PASSWORD)
        times.append(time.thread_time() - started)
    return f"{encoded.split('$')[3]} ({1000 * sorted(times)[2]:.1f} ms CPU per verification)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    if subprocess.run([*git, "status", "--porcelain", "--", "idp", "config", "pyproject.toml"],
                      capture_output=True, text=True).stdout.strip():
        commit += " with uncommitted changes to the provider"
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    results: dict = {"meta": {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "commit": commit, "cores": os.cpu_count(), "cpu": cpu, "smoke": args.smoke,
        "python": platform.python_version(), "workers": args.workers, "threads": args.threads,
        "duration": args.duration, "warmup": args.warmup, "concurrency": args.concurrency,
        "accounts": args.accounts, "argon2": "?"},
        "rows": [], "growth": [], "problems": [], "checks": []}
    servers: list[Provider] = []
    node = None
    status = 0
    try:
        ensure_services()
        log(f"preparing the provider with {args.accounts[0]:,} accounts")
        drop_stale_schemas()
        ours, m = provider(workdir, schema_name("main"), args.accounts[0], args, args.threads,
                           servers)
        results["meta"]["argon2"] = argon2_description(ours.database_url)
        if not args.threads_given and "signin" in args.scenarios:
            choose_threads(ours, m, args, results)
        results["meta"]["threads"] = ours.threads
        node = None if args.no_reference else reference(workdir, results)
        for key in args.scenarios:
            results["rows"].append(measure(m, key, args, accounts=args.accounts[0]))
            if node:
                results["rows"].append(measure(node, key, args))
            if key == "signin":
                rate = results["rows"][-2 if node else -1]["throughput"] / 2
                results["half_capacity"] = measure(m, key, args, rate=rate,
                                                   duration=2 * args.duration,
                                                   accounts=args.accounts[0])
        results["meta"]["rss_mib"] = ours.server.memory_mib()
        if len(args.accounts) > 1 and set(GROWTH) & set(args.scenarios):
            log(f"preparing a second provider with {args.accounts[-1]:,} accounts")
            _, big = provider(workdir, schema_name("growth"), args.accounts[-1], args,
                              ours.threads, servers)
            growth(m, big, args, results)
        results["checks"] = verdicts(results)
        status = 1 if error_count(results) else 0
    except Exception as exc:  # noqa: BLE001 - reported; the servers are stopped below
        log(f"FAILED: {exc}" if isinstance(exc, (SuiteError, FlowError))
            else traceback.format_exc())
        results["problems"].append(f"the benchmark stopped: {str(exc)[:1000]}")
        status = 2
    finally:
        if node:
            node.server.stop()
        for server in servers:
            try:
                server.cleanup()
            except Exception as exc:  # noqa: BLE001 - the other servers still get stopped
                log(f"cleaning up {server.schema}: {exc}")
            if server.server.log_path:  # bench_main.log, bench_growth.log
                name = server.schema.rsplit("_", 1)[0]
                shutil.copy(server.server.log_path, args.out / f"{name}.log")
        shutil.rmtree(workdir, ignore_errors=True)
        windows = results["rows"] + [w for g in results["growth"] for w in (g["small"], g["big"])]
        results["meta"]["other_cores"] = (sum(r["other_cores"] for r in windows) /
                                          max(1, len(windows)))
        results["meta"]["elapsed_s"] = time.monotonic() - t0
        results["meta"]["exit_status"] = status
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        (args.out / "results.md").write_text(render(results))
        log(f"wrote {args.out / 'results.md'} in {time.monotonic() - t0:.0f}s (exit {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())

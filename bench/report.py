"""The Markdown rendering of a results.json written by bench/run.py.

    python bench/report.py bench/results/results.json   # prints the Markdown
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(value, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}{suffix}"
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _mib(kib) -> str:
    return "–" if kib is None else f"{kib / 1024:.1f}"


FLOOR_LABELS = {
    "discovery": "Floor: gunicorn serving the discovery document statically",
    "signin": "Floor: the same flow on Flask + SQLAlchemy Core + Redis, no provider layer "
              "(bench/signin_floor), no password hash",
}
FLOOR_HASH_LABEL = ("Floor of the sign-in, checking the password (one argon2id verification "
                    "per flow)")


def _rounds_table(results: dict) -> list[str]:
    """Each window of the closed-loop scenarios: the CPU per operation of every server,
    and ours against node's in the same round (how far the machine drifted)."""
    windows: dict[tuple[str, str], list[dict]] = {}
    for row in results.get("scenarios", []):
        if row.get("round_run") and row["mode"] == "closed":
            windows.setdefault((row["key"], row["target"]), []).append(row)
    if not windows:
        return []
    out = ["## Rounds", "",
           "CPU ms per operation in each window (the table above merges them); "
           "*ours/node*: the ratio within each round.", "",
           _row(["Scenario", "server", "CPU ms per op, by window", "ours/node, by round"]),
           _row(["---", "---", "---", "---"])]
    for key, title in results.get("scenario_titles", {}).items():
        node = windows.get((key, "node"), [])
        for (k, target), rows in windows.items():
            if k != key:
                continue
            ratios = ""
            if target != "node" and len(node) == len(rows):
                ratios = ", ".join(_f(r["cpu_ms_per_op"] / n["cpu_ms_per_op"], 2, "×")
                                   for r, n in zip(rows, node) if n["cpu_ms_per_op"])
            out.append(_row([title, target,
                             ", ".join(_f(r["cpu_ms_per_op"], 3) for r in rows), ratios]))
    out.append("")
    return out


def render(results: dict) -> str:
    out: list[str] = []
    meta = results["meta"]
    out.append(f"# Benchmark results ({meta['mode']}{', smoke' if meta['smoke'] else ''})")
    out.append("")
    out.append(f"- Date: {meta['started']} (took {meta.get('elapsed_s', 0):.0f} s); "
               f"command: `{meta['command']}`")
    machine = meta["machine"]
    out.append(f"- Machine: {machine['cores']} cores ({machine['cpu_model']}), "
               f"{machine['memory_gib']:.0f} GiB, Python {machine['python']}, "
               f"{machine.get('node', 'node ?')}")
    if machine.get("packages"):
        out.append("- Packages: " + ", ".join(f"{name} {version}" for name, version
                                               in machine["packages"].items()))
    source = meta.get("source") or {}
    if source.get("commit"):
        dirty = source.get("modified_files")
        out.append(f"- Source: commit {source['commit'][:12]}"
                   + (f", with {dirty} modified or new files outside bench/ and docs/"
                      if dirty else ", clean tree"))
    for key, target in results.get("targets", {}).items():
        out.append(f"- `{key}`: {target.get('version', '')}; {target.get('setup', '')}")
    s = meta["settings"]
    rounds = s.get("rounds", 1)
    taken = (f"in {rounds} windows of {s['duration'] / rounds:g} s per server, taken in turn "
             f"(node, ours, ..., node, ours, ...; {min(1.0, s['warmup']):g} s warm-up before "
             "the later windows)" if rounds > 1 else "")
    out.append(f"- Each scenario: {s['warmup']:g} s warm-up, then {s['duration']:g} s measured"
               f"{' ' + taken if taken else ''}, "
               f"{s['concurrency']} concurrent client threads (closed loop; the half-capacity "
               f"sign-in: fixed rate, twice as long, {2 * s['concurrency']} threads, one "
               f"window); sign-in accounts: {meta.get('signin_accounts', '?')}")
    argon = results.get("argon2")
    if argon:
        out.append(f"- argon2id verification (m={argon['memory_kib']} KiB, t={argon['time_cost']}, "
                   f"p={argon['parallelism']}): {argon['cpu_ms']:.1f} ms CPU "
                   f"({argon['wall_ms']:.1f} ms wall), so the hash-bound limit on "
                   f"{machine['cores']} cores is {argon['hash_bound_per_s']:.0f} sign-ins/s"
                   + (f"; the mean of its timings in the sign-in's rounds "
                      f"({', '.join(f'{v:.1f}' for v in argon['rounds_cpu_ms'])} ms; "
                      f"{argon['at_start_cpu_ms']:.1f} ms at the start)"
                      if argon.get("rounds_cpu_ms") else ""))
    if results.get("problems"):
        out.append("")
        out.append("**Problems:**")
        for problem in results["problems"]:
            out.append(f"- {problem}")
    out.append("")

    out.append("## Scenarios")
    out.append("")
    out.append("CPU is the server's CPU seconds per 1,000 operations (= ms per operation): "
               "ours is gunicorn's master and workers; *+ storage* adds PostgreSQL (our "
               "database's backends and the background processes) and Redis; node is its "
               "one process, storage included (in-memory adapter). Latencies in ms.")
    out.append("")
    out.append(_row(["Scenario", "ours op/s", "p50", "p99", "err", "CPU s/1k",
                     "+ storage", "node op/s", "p50", "p99", "err", "CPU s/1k",
                     "ours/node CPU"]))
    out.append(_row(["---"] + ["---:"] * 12))
    by_key: dict[tuple, dict] = {}
    for row in results.get("scenarios", []):
        if not row.get("growth_run") and not row.get("round_run"):  # growth table; merged
            by_key[(row["key"], row["target"], row["accounts"], row["mode"])] = row
    base_accounts = meta["settings"]["accounts"][0] if meta["settings"]["accounts"] else None
    for key, title in results.get("scenario_titles", {}).items():
        for mode in ("closed", "fixed-rate"):
            ours = by_key.get((key, "ours", base_accounts, mode))
            node = by_key.get((key, "node", base_accounts, mode)) or \
                by_key.get((key, "node", None, mode))
            if not ours and not node:
                continue
            label = title if mode == "closed" else f"{title}, at half capacity"
            ratio = None
            if ours and node and node.get("cpu_ms_per_op"):
                ratio = ours["cpu_ms_per_op"] / node["cpu_ms_per_op"]
            cells = [label]
            for side in (ours, node):
                if side is None:
                    cells += ["–"] * (6 if side is ours else 5)
                    continue
                cells += [_f(side["throughput"], 1), _f(side["p50_ms"]), _f(side["p99_ms"]),
                          side["errors"], _f(side["cpu_ms_per_op"], 3)]
                if side is ours:
                    cells.append(_f(side.get("total_cpu_ms_per_op"), 3))
            cells.append(_f(ratio, 2, "×"))
            out.append(_row(cells))
            nohash = by_key.get((key, "ours-nohash", base_accounts, mode))
            if nohash:
                ratio = (nohash["cpu_ms_per_op"] / node["cpu_ms_per_op"]
                         if node and node.get("cpu_ms_per_op") else None)
                out.append(_row(["Ours, accounts hashed with argon2id's smallest parameters",
                                 _f(nohash["throughput"], 1), _f(nohash["p50_ms"]),
                                 _f(nohash["p99_ms"]), nohash["errors"],
                                 _f(nohash["cpu_ms_per_op"], 3),
                                 _f(nohash.get("total_cpu_ms_per_op"), 3), "", "", "", "", "",
                                 _f(ratio, 2, "×")]))
            for floor_name in ("floor", "floor-hash"):
                floor = by_key.get((key, floor_name, None, mode))
                if not floor:
                    continue
                ratio = (floor["cpu_ms_per_op"] / node["cpu_ms_per_op"]
                         if node and node.get("cpu_ms_per_op") else None)
                label = (FLOOR_HASH_LABEL if floor_name == "floor-hash"
                         else FLOOR_LABELS.get(key, FLOOR_LABELS["discovery"]))
                out.append(_row([label,
                                 _f(floor["throughput"], 1), _f(floor["p50_ms"]),
                                 _f(floor["p99_ms"]), floor["errors"],
                                 _f(floor["cpu_ms_per_op"], 3), "–", "", "", "", "", "",
                                 _f(ratio, 2, "×")]))
    out.append("")
    out.extend(_rounds_table(results))

    work = [r for r in results.get("scenarios", [])
            if r["target"] == "ours" and r["accounts"] == base_accounts
            and not r.get("growth_run") and not r.get("round_run")]
    if work:
        out.append("## Work per operation (ours)")
        out.append("")
        out.append("What one operation asks of the storage, and what the measurement cost "
                   "around it: the load generator's own CPU and how busy the machine was. "
                   "PostgreSQL counts are approximate (backends report them within a second); "
                   "Redis counts are the whole server's. *Busiest worker*: its share of the "
                   "workers' CPU (50 % is even on two workers; near 100 %, the load sat on "
                   "one worker).")
        out.append("")
        out.append(_row(["Scenario", "mode", "HTTP req/op", "PG xact/op", "PG row writes/op",
                         "Redis cmd/op", "PG CPU s/1k", "Redis CPU s/1k", "client CPU s/1k",
                         "machine busy", "others (cores)", "busiest worker"]))
        out.append(_row(["---", "---"] + ["---:"] * 10))
        for row in work:
            storage = row.get("storage_per_op", {})
            backing = row.get("backing_cpu_ms_per_op", {})
            out.append(_row([row["title"], row["mode"], _f(row.get("requests_per_op"), 1),
                             _f(storage.get("pg_transactions"), 1),
                             _f(storage.get("pg_row_writes"), 1),
                             _f(storage.get("redis_commands"), 1),
                             _f(backing.get("postgresql"), 3), _f(backing.get("redis"), 3),
                             _f(row.get("client_cpu_ms_per_op"), 3),
                             _f(row.get("machine_busy_pct"), 0, " %"),
                             _f(row.get("other_load_cores"), 2),
                             _f((row.get("worker_cpu_pct") or [None])[0], 0, " %")]))
        out.append("")

    signin = results.get("signin")
    if signin:
        out.append("## Sign-in flow and the password hash")
        out.append("")
        out.append(_row(["Figure", "Value"]))
        out.append(_row(["---", "---:"]))
        for label, value in (
            ("Our server CPU per flow (ms)", _f(signin.get("ours_cpu_ms"), 2)),
            ("of which one argon2id verification (ms)", _f(signin.get("hash_cpu_ms"), 2)),
            ("share of the flow's CPU spent in the hash", _f(signin.get("hash_share_pct"), 1, " %")),
            ("Our CPU per flow without the hash (ms)", _f(signin.get("ours_cpu_minus_hash_ms"), 2)),
            ("node CPU per flow (ms)", _f(signin.get("node_cpu_ms"), 2)),
            ("(ours − hash) / node", _f(signin.get("ratio_minus_hash"), 2, "×")),
            ("the verifications' CPU inside our loaded workers, per flow (ms; bench/hash_meter.py)",
             _f(signin.get("hash_in_server_ms"), 2)),
            ("(ours − that) / node", _f(signin.get("ratio_minus_hash_in_server"), 2, "×")),
            ("Our CPU per flow measured with a negligible hash (argon2id 8 KiB, 1 pass; ms)",
             _f(signin.get("nohash_cpu_ms"), 2)),
            ("that / node", _f(signin.get("nohash_ratio"), 2, "×")),
            ("what the hash costs inside the flow: ours − that (ms)",
             _f(signin.get("hash_in_flow_ms"), 2)),
            ("Floor of the stack per flow, no password hash (ms; bench/signin_floor)",
             _f(signin.get("floor_cpu_ms"), 2)),
            ("floor / node", _f(signin.get("floor_ratio"), 2, "×")),
            ("ours with a negligible hash / that floor", _f(signin.get("nohash_over_floor"), 2, "×")),
            ("Floor of the stack per flow, checking the password (ms)",
             _f(signin.get("floor_hash_cpu_ms"), 2)),
            ("what the hash costs inside the floor's flow (ms)",
             _f(signin.get("floor_hash_in_flow_ms"), 2)),
            ("the check applied to that floor: (floor with hash − hash) / node",
             _f(signin.get("floor_check_ratio"), 2, "×")),
            ("the verifications' CPU inside the floor's loaded workers, per flow (ms)",
             _f(signin.get("floor_hash_in_server_ms"), 2)),
            ("(floor with hash − that) / node", _f(signin.get("floor_check_in_server_ratio"), 2, "×")),
            ("HTTP requests per flow, ours / node",
             f"{_f(signin.get('ours_requests_per_flow'), 1)} / "
             f"{_f(signin.get('node_requests_per_flow'), 1)}"),
            ("Our flows per second (closed loop)", _f(signin.get("ours_flows_per_s"), 1)),
            ("Hash-bound limit (cores ÷ hash time), flows/s", _f(signin.get("hash_bound_per_s"), 1)),
            ("Fraction of the hash-bound limit reached", _f(signin.get("fraction_of_limit_pct"), 1, " %")),
            ("Flows per minute on this machine", _f(signin.get("ours_flows_per_min"), 0)),
        ):
            out.append(_row([label, value]))
        out.append("")

    targets = results.get("checks", [])
    if targets:
        out.append("## Targets")
        out.append("")
        out.append(_row(["Target", "Measured", "Limit", "Met"]))
        out.append(_row(["---", "---:", "---:", ":---:"]))
        for check in targets:
            met = {True: "yes", False: "**no**", None: "–"}[check["ok"]]
            out.append(_row([check["name"], check["value"], check["limit"], met]))
        out.append("")

    memory = results.get("memory", {})
    if memory:
        out.append("## Memory (resident, MiB)")
        out.append("")
        out.append("RSS counts pages shared with the gunicorn master once per process; PSS "
                   "divides them among the sharers.")
        out.append("")
        out.append(_row(["Process", "RSS at rest", "RSS after", "PSS at rest", "PSS after"]))
        out.append(_row(["---", "---:", "---:", "---:", "---:"]))
        for target, phases in memory.items():
            rest = phases.get("at_rest", [])
            after = phases.get("after", [])
            for i, proc in enumerate(rest):
                later = after[i] if i < len(after) else {}
                name = f"{target} {proc['role']}" + (f" {i}" if proc["role"] == "worker" else "")
                out.append(_row([name, _mib(proc.get("rss")), _mib(later.get("rss")),
                                 _mib(proc.get("pss")), _mib(later.get("pss"))]))
        out.append("")

    growth = results.get("growth", [])
    if growth:
        out.append("## Growth with the number of accounts (ours, PostgreSQL)")
        out.append("")
        rounds = results.get("growth_rounds", 1)
        out.append("Per-operation CPU including PostgreSQL and Redis (where a bigger table "
                   "would cost), compared with the smallest account count"
                   + (f": two providers running side by side (same code and settings, one "
                      f"database each), measured alternately, {rounds} rounds each; the "
                      f"figures are over all rounds (p50 and p99: the worst round)."
                      if rounds > 1 else "."))
        out.append("")
        out.append(_row(["Scenario", "Accounts", "op/s", "p50", "p99", "err",
                         "CPU s/1k", "+ storage", "change"]))
        out.append(_row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]))
        for row in growth:
            out.append(_row([row["title"], f"{row['accounts']:,}", _f(row["throughput"], 1),
                             _f(row["p50_ms"]), _f(row["p99_ms"]), row["errors"],
                             _f(row["cpu_ms_per_op"], 3), _f(row["total_cpu_ms_per_op"], 3),
                             _f(row.get("change_pct"), 1, " %")]))
        out.append("")

    errors = [r for r in results.get("scenarios", []) if r.get("errors")]
    if errors:
        out.append("## Errors")
        out.append("")
        for row in errors:
            out.append(f"- {row['target']} {row['key']} ({row['accounts']} accounts): "
                       f"{row['errors']} errors, e.g. `{(row['error_samples'] or [''])[0]}`")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/results.json")
    print(render(json.loads(path.read_text())))

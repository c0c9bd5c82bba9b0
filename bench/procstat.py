"""CPU and memory accounting of process trees from /proc (Linux only).

The CPU figure of a server is the CPU time of its whole process tree: for a root process
(gunicorn's master, node, the PostgreSQL postmaster) its own user+system time, the time
of its children already reaped (cutime+cstime), and the same for every live descendant.
A worker that exits between two samples therefore moves from "live descendant" to its
parent's "reaped children" without being lost or counted twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass
class ProcStat:
    pid: int
    comm: str
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int

    @property
    def ticks(self) -> int:
        return self.utime + self.stime + self.cutime + self.cstime


def read_stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may contain spaces and parentheses: split around the last ')'.
    open_paren, close_paren = raw.index("("), raw.rindex(")")
    comm = raw[open_paren + 1:close_paren]
    fields = raw[close_paren + 2:].split()
    # fields[0] is field 3 (state) of proc(5).
    return ProcStat(pid=pid, comm=comm, ppid=int(fields[1]), utime=int(fields[11]),
                    stime=int(fields[12]), cutime=int(fields[13]), cstime=int(fields[14]))


def all_stats() -> dict[int, ProcStat]:
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def descendants(root: int, stats: dict[int, ProcStat] | None = None) -> list[int]:
    stats = all_stats() if stats is None else stats
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = [], list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds (user+system) consumed so far by the trees under ``roots``."""
    stats = all_stats()
    pids: set[int] = set()
    for root in roots:
        if root in stats:
            pids.add(root)
            pids.update(descendants(root, stats))
    return sum(stats[p].ticks for p in pids if p in stats) / CLK_TCK


def cpu_seconds_by_pid(pids: list[int]) -> dict[int, float]:
    """Each live process's own CPU seconds (user+system) so far, by pid."""
    found = {}
    for pid in pids:
        stat = read_stat(pid)
        if stat is not None:
            found[pid] = (stat.utime + stat.stime) / CLK_TCK
    return found


def cpu_shares(before: dict[int, float], after: dict[int, float]) -> list[float]:
    """Each process's share (%) of the CPU its group spent between two samples of
    :func:`cpu_seconds_by_pid`, largest first; processes missing from either are left out."""
    spent = {pid: after[pid] - before[pid] for pid in before if pid in after}
    total = sum(spent.values())
    if total <= 0:
        return []
    return sorted((100 * value / total for value in spent.values()), reverse=True)


def find_roots(comm_prefix: str) -> list[int]:
    """Processes whose name starts with ``comm_prefix`` and whose parent's does not:
    the roots of e.g. the PostgreSQL or Redis process trees."""
    stats = all_stats()
    roots = []
    for stat in stats.values():
        if stat.comm.startswith(comm_prefix):
            parent = stats.get(stat.ppid)
            if parent is None or not parent.comm.startswith(comm_prefix):
                roots.append(stat.pid)
    return sorted(roots)


def memory_kib(pid: int) -> dict[str, int] | None:
    """Resident set size and proportional set size (shared pages divided among the
    processes sharing them) of one process, in KiB."""
    result: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                result[key.lower()] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
        try:
            fields = Path(f"/proc/{pid}/statm").read_text().split()
            result["rss"] = int(fields[1]) * PAGE_KIB
        except (FileNotFoundError, ProcessLookupError):
            return None
    if "private_clean" in result:
        result["uss"] = result.pop("private_clean") + result.pop("private_dirty")
    return result


def tree_memory(root: int) -> list[dict]:
    """Memory of a root process (role "master" when it has children, else "process")
    and of each of its live descendants (role "worker")."""
    children = sorted(descendants(root))
    rows = []
    for pid in [root, *children]:
        stat = read_stat(pid)
        mem = memory_kib(pid)
        if stat is None or mem is None:
            continue
        role = "worker" if pid != root else ("master" if children else "process")
        rows.append({"pid": pid, "comm": stat.comm, "role": role, **mem})
    return rows


@dataclass
class MachineCpu:
    busy: int
    total: int


def machine_cpu() -> MachineCpu:
    """Aggregate CPU ticks of the machine (first line of /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return MachineCpu(busy=total - idle, total=total)


def machine_busy_fraction(before: MachineCpu, after: MachineCpu) -> float:
    total = after.total - before.total
    return (after.busy - before.busy) / total if total else 0.0

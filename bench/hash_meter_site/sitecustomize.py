"""Loaded by the interpreters of the servers that bench/run.py measures (their PYTHONPATH
starts with this folder; see bench/hash_meter.py): counts the thread CPU time spent inside
``argon2.PasswordHasher.verify``, so that the suite knows what the password verifications
cost *inside the loaded server*, not only timed alone in its own process.

Each process adds to a file of its own, ``$BENCH_HASH_METER/<pid>``: two little-endian
unsigned 64-bit numbers, nanoseconds and verifications, updated in a shared mapping under a
lock, so that the suite can read them at any moment. Nothing happens without
BENCH_HASH_METER. The provider's code is not touched: this patches the library's class.
A ``sitecustomize`` further down the path (a distribution's own) still runs after this one.
"""

from __future__ import annotations

import os

_DIRECTORY = os.environ.get("BENCH_HASH_METER")


def _install(directory: str) -> None:
    import mmap
    import struct
    import threading
    import time

    from argon2 import PasswordHasher

    record = struct.Struct("<QQ")
    lock = threading.Lock()
    state = {"pid": None, "map": None}

    def counters() -> mmap.mmap:
        # Opened lazily in each process: gunicorn forks its workers from the master.
        if state["pid"] != os.getpid():
            path = os.path.join(directory, str(os.getpid()))
            with open(path, "wb+") as handle:
                handle.write(bytes(record.size))
                handle.flush()
                state["map"] = mmap.mmap(handle.fileno(), record.size)
            state["pid"] = os.getpid()
        return state["map"]

    verify = PasswordHasher.verify

    def metered_verify(self, hash, password):  # noqa: A002 - argon2's own parameter name
        started = time.thread_time_ns()
        try:
            return verify(self, hash, password)
        finally:
            spent = time.thread_time_ns() - started
            with lock:
                shared = counters()
                nanoseconds, count = record.unpack_from(shared)
                record.pack_into(shared, 0, nanoseconds + spent, count + 1)

    PasswordHasher.verify = metered_verify


def _run_the_shadowed_one() -> None:
    import importlib.machinery
    import importlib.util
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if os.path.abspath(entry or os.curdir) == here:
            continue
        spec = importlib.machinery.PathFinder.find_spec("sitecustomize", [entry])
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return


if _DIRECTORY:
    _install(_DIRECTORY)
_run_the_shadowed_one()

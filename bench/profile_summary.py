"""Summarise py-spy raw (collapsed-stack) profiles written by ``bench/run.py --profile``.

    python bench/profile_summary.py bench/results/profile-signin-*.txt [--top 25]

Prints, over all the given files (one per gunicorn worker): the share of samples per
package (the file's top-level package: argon2, sqlalchemy, jinja2, idp...), counted
where the time is spent (self), then the functions with the most inclusive and self
samples. py-spy records only non-idle stacks by default, so the shares are of CPU time.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def parse(paths: list[Path]):
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = []
            for raw in stack.split(";"):
                match = FRAME.match(raw)
                if match:
                    frames.append((match["func"], match["file"]))
                else:
                    frames.append((raw, "?"))
            yield frames, int(count)


def package(file: str) -> str:
    parts = file.replace("\\", "/").split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    first = parts[0]
    if first.endswith(".py"):
        return "(stdlib) " + first[:-3] if len(parts) == 1 else first
    if first in ("<frozen importlib._bootstrap>",):
        return "(import)"
    return first


def summarise(paths: list[Path], top: int) -> str:
    total = 0
    self_pkg: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    self_fn: collections.Counter = collections.Counter()
    for frames, count in parse(paths):
        total += count
        if not frames:
            continue
        func, file = frames[-1]
        self_pkg[package(file)] += count
        self_fn[f"{func} ({file})"] += count
        for name in {f"{f} ({p})" for f, p in frames}:
            inclusive[name] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples from {len(paths)} file(s)", "", "Self time by package:"]
    for name, count in self_pkg.most_common(top):
        lines.append(f"  {100 * count / total:5.1f} %  {name}")
    lines += ["", "Inclusive time by function (compte-usager and libraries):"]
    shown = 0
    for name, count in inclusive.most_common():
        if any(skip in name for skip in ("gunicorn", "(flask/app.py", "werkzeug/",
                                         "<module>")):
            continue
        lines.append(f"  {100 * count / total:5.1f} %  {name}")
        shown += 1
        if shown >= top:
            break
    lines += ["", "Self time by function:"]
    for name, count in self_fn.most_common(top):
        lines.append(f"  {100 * count / total:5.1f} %  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(summarise(args.files, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())

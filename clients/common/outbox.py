"""The apps' e-mails and SMS, written to a folder (one JSON file each, like the
provider's outbox) instead of being sent: the demo and the tests read them there."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path


def write(folder: str | Path, kind: str, to: str, subject: str, text: str) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.time_ns():020d}-{kind}-{secrets.token_hex(4)}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"kind": kind, "to": to, "subject": subject, "text": text}, fh,
                  ensure_ascii=False, indent=2)
    return path


def read(folder: str | Path) -> list[dict]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]

"""The outbox: a folder where messages are written instead of being sent.

One JSON file per message (``<nanoseconds>-<kind>-<random>.json``, mode 0600), with
``kind`` ("email" or "sms"), ``to``, ``subject``, ``text``, ``html`` and
``created_at`` (ISO 8601, UTC). It is how the demo and the tests read the codes and
links that are never written to the logs.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

from idp.messaging.base import DeliveryError


def write_outbox(outbox_dir: Path | str, kind: str, to: str, subject: str, text: str,
                 html: str = "") -> Path:
    """Write one message atomically; returns the file's path."""
    folder = Path(outbox_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {"kind": kind, "to": to, "subject": subject, "text": text, "html": html,
              "created_at": datetime.now(timezone.utc).isoformat()}
    name = f"{time.time_ns():020d}-{kind}-{secrets.token_hex(4)}.json"
    temporary = folder / f".{name}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, ensure_ascii=False, indent=2)
    final = folder / name
    os.replace(temporary, final)
    return final


def deliver_to_outbox(outbox_dir: Path | str, kind: str, to: str, subject: str, text: str,
                      html: str = "") -> Path:
    """:func:`write_outbox` for the backends: a failure is a transient DeliveryError."""
    try:
        return write_outbox(outbox_dir, kind, to, subject, text, html)
    except OSError as exc:
        raise DeliveryError(f"cannot write the outbox: {type(exc).__name__}",
                            transient=True) from exc


def read_outbox(outbox_dir: Path | str) -> list[dict]:
    """Every message of the outbox, oldest first (newest last)."""
    folder = Path(outbox_dir)
    if not folder.is_dir():
        return []
    messages = []
    for path in sorted(folder.glob("[0-9]*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being deleted, or not ours
        record["path"] = str(path)
        messages.append(record)
    return messages


def clear_outbox(outbox_dir: Path | str) -> None:
    """Delete every message of the outbox (tests, demo reset)."""
    folder = Path(outbox_dir)
    if folder.is_dir():
        for path in folder.glob("[0-9]*.json"):
            path.unlink(missing_ok=True)

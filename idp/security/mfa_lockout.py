"""Per-account protection against second-factor guessing, in the key-value store (Redis
in production) so that it holds across processes, instances and login flows.

A six-digit code is one in a million, three steps of them accepted at a time: whoever
knows the password must not get many tries. Every wrong code of an account (at login,
a recovery code, or in "Mon compte") counts, whichever flow it came from:

- ``fail``: the failures within ``mfa.failure_window`` (counted from the first one). A
  correct password does not wipe it, nor does a correct code: a patient attacker
  interleaving his guesses with the owner's sign-ins would never be blocked;
- ``wait``: after ``mfa.failures_before_delay`` failures, the time before which no code
  is taken (``mfa.delay_base`` seconds, doubling up to ``mfa.delay_max``);
- ``block``: after ``mfa.block_after`` failures, no code is taken for
  ``mfa.block_duration`` seconds, and every further failure blocks again. The owner is
  told once per window: someone who knows the password is at work.

Each attempt takes a short per-account lock and counts itself as a failure before the
code is checked, so that concurrent guesses cannot slip in between; a right code takes
its count back. Only generic store operations are used (``set_if_absent``, ``get``,
``incr``, ``set``, ``ttl``, ``delete``), each time-to-live bounded by the settings.
Times are read from :data:`clock` (tests move it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

# begin()'s answer is the password lockout's: allowed, or retry_after and blocked.
from .lockout import Decision  # noqa: F401 (part of this module's interface)

# Patched by tests to move time forward.
clock = time.time

# How long a crashed attempt can hold the per-account lock.
BUSY_TTL = 15
# Answer given to an attempt made while another one on the same account is running.
BUSY_RETRY = 1


def _keys(user_id: str) -> dict[str, str]:
    return {name: f"mfa-lock:{name}:{user_id}"
            for name in ("fail", "wait", "block", "busy", "notified")}


@dataclass(frozen=True)
class Failure:
    failures: int
    retry_after: int = 0
    blocked: bool = False
    # True once per window: tell the owner.
    notify: bool = False


def _until(raw, now: float) -> float:
    try:
        until = float(raw) if raw else 0.0
    except ValueError:
        return 0.0
    return until if until > now else 0.0


def delay_for(settings, failures: int) -> float:
    """Seconds to wait after the ``failures``-th failure (0: none)."""
    extra = failures - settings.mfa.failures_before_delay
    if extra < 0:
        return 0.0
    return min(settings.mfa.delay_max, settings.mfa.delay_base * 2 ** min(extra, 40))


def begin(kv, settings, user_id: str) -> Decision:
    """Before checking a second-factor code of ``user_id``. When allowed, the attempt is
    already counted as a failure and holds the account's lock until :func:`failed` or
    :func:`succeeded` (or :func:`release`)."""
    keys = _keys(user_id)
    if not kv.set_if_absent(keys["busy"], "1", BUSY_TTL):
        return Decision(False, BUSY_RETRY)
    now = clock()
    for name, blocked in (("block", True), ("wait", False)):
        until = _until(kv.get(keys[name]), now)
        if until:
            kv.delete(keys["busy"])
            return Decision(False, max(1, math.ceil(until - now)), blocked)
    kv.incr(keys["fail"], settings.mfa.failure_window)
    return Decision(True)


def failed(kv, settings, user_id: str) -> Failure:
    """The code was wrong: set the delay or the block."""
    limits = settings.mfa
    keys = _keys(user_id)
    now = clock()
    try:
        count = int(kv.get(keys["fail"]) or 0)
        if count >= limits.block_after:
            kv.set(keys["block"], repr(now + limits.block_duration), limits.block_duration + 1)
            notify = kv.set_if_absent(keys["notified"], "1", limits.failure_window)
            return Failure(count, limits.block_duration, True, notify)
        delay = delay_for(settings, count)
        if delay:
            kv.set(keys["wait"], repr(now + delay), math.ceil(delay) + 1)
        return Failure(count, math.ceil(delay))
    finally:
        kv.delete(keys["busy"])


def _uncount(kv, settings, keys: dict[str, str]) -> None:
    """Take back the failure :func:`begin` counted. Only the lock's holder writes the
    count: reading it and writing it back (with the time left of its window) is safe."""
    count = int(kv.get(keys["fail"]) or 0)
    remaining = kv.ttl(keys["fail"])
    if count <= 1 or remaining <= 0:
        kv.delete(keys["fail"])
    else:
        kv.set(keys["fail"], str(count - 1), min(remaining, settings.mfa.failure_window))


def succeeded(kv, settings, user_id: str) -> None:
    """The code was right: it was no failure (the others still count)."""
    keys = _keys(user_id)
    try:
        _uncount(kv, settings, keys)
    finally:
        kv.delete(keys["busy"])


def release(kv, settings, user_id: str) -> None:
    """Let go of the lock without judging the attempt (it was not made)."""
    succeeded(kv, settings, user_id)


def failures(kv, user_id: str) -> int:
    raw = kv.get(_keys(user_id)["fail"])
    return int(raw) if raw else 0

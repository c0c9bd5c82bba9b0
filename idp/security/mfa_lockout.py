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
its count back. The mechanism is the password lockout's (:class:`lockout.Gate`), with
the ``mfa`` settings and its own keys. Times are read from :data:`clock` (tests move it).
"""

from __future__ import annotations

import time

# begin()'s and failed()'s answers are the password lockout's.
from .lockout import BUSY_RETRY, Decision, Failure, Gate, Limits  # noqa: F401 (interface)

# Patched by tests to move time forward.
clock = time.time


def _limits(settings) -> Limits:
    mfa = settings.mfa
    return Limits(window=mfa.failure_window, failures_before_delay=mfa.failures_before_delay,
                  delay_base=mfa.delay_base, delay_max=mfa.delay_max,
                  block_after=mfa.block_after, block_duration=mfa.block_duration)


CODES = Gate("mfa-lock", _limits, now=lambda: clock())


def delay_for(settings, failures_: int) -> float:
    """Seconds to wait after the ``failures_``-th failure (0: none)."""
    return CODES.delay_for(settings, failures_)


def begin(kv, settings, user_id: str) -> Decision:
    """Before checking a second-factor code of ``user_id``. When allowed, the attempt is
    already counted as a failure and holds the account's lock until :func:`failed` or
    :func:`succeeded` (or :func:`release`)."""
    return CODES.begin(kv, settings, user_id)


def failed(kv, settings, user_id: str) -> Failure:
    """The code was wrong: set the delay or the block."""
    return CODES.failed(kv, settings, user_id)


def succeeded(kv, settings, user_id: str) -> None:
    """The code was right: it was no failure (the others still count)."""
    CODES.take_back(kv, settings, user_id)


def release(kv, settings, user_id: str) -> None:
    """Let go of the lock without judging the attempt (it was not made)."""
    CODES.take_back(kv, settings, user_id)


def failures(kv, user_id: str) -> int:
    return CODES.failures(kv, user_id)

"""Per-account protection against password guessing, in the key-value store (Redis in
production) so that it holds across processes and instances.

For each submitted e-mail address, whether or not an account exists (so that the
answers tell nothing about existence), the store keeps:

- ``fail``: the failures within ``rate_limits.account_block_window`` (counted from the
  first one);
- ``wait``: after ``account_failures_before_delay`` failures, the time before which no
  new attempt is taken: ``account_delay_base`` seconds, doubling with each further
  failure up to ``account_delay_max``. A delay is answered at once with "try again in
  N s", never by holding a worker;
- ``block``: after ``account_block_after`` failures, the time until which no attempt is
  taken (``account_block_duration``). Every further failure within the window blocks
  again. A block always expires: an attacker can slow an account down, never shut it.

Each attempt takes a short per-account lock, and counts itself as a failure *before* the
password is checked (:data:`BEGIN_ATTEMPT`: one atomic step with the reading of the block
and the delay); a success wipes the count. So concurrent attempts cannot slip several guesses in
between a read and a write of the counter. A successful login resets the count; a
password reset (:func:`clear`) wipes everything, block included.

Keys hold a digest of the (normalised) address, never the address itself. Times are read from
:data:`clock` (tests move it forward); TTLs only clean up.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from ..persistence.kv import Keys, Script

# Patched by tests to move time forward.
clock = time.time

# How long a crashed attempt can hold the per-account lock.
BUSY_TTL = 15
# Answer given to an attempt made while another one on the same account is running.
BUSY_RETRY = 1


def _begin_attempt_locally(kv: Keys, keys: list[str], args: list) -> list:
    lock, counter, *gates = keys
    lock_ttl, now, counter_ttl = int(args[0]), float(args[1]), int(args[2])
    if kv.get(lock) is not None:
        return [0, []]
    found = [kv.get(gate) for gate in gates]
    if not any(_until_value(raw, now) for raw in found):
        kv.set(lock, "1", lock_ttl)
        kv.incr(counter, counter_ttl)
    return [1, found]


# Take the account's lock unless held (-> 0); read the gates (times before which no
# attempt is taken); if one is still ahead, let the lock go, otherwise count the attempt.
# A gate holds repr(a float): tonumber reads it as float() does.
BEGIN_ATTEMPT = Script(lua="""
if not redis.call('SET', KEYS[1], '1', 'EX', ARGV[1], 'NX') then
  return {0, {}}
end
local now = tonumber(ARGV[2])
local gates = {}
local closed = false
for i = 3, #KEYS do
  local raw = redis.call('GET', KEYS[i])
  gates[i - 2] = raw
  local until_ = raw and tonumber(raw)
  if until_ and until_ > now then closed = true end
end
if closed then
  redis.call('DEL', KEYS[1])
else
  redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3], 'NX')
end
return {1, gates}
""", local=_begin_attempt_locally)


def _subject(email: str) -> str:
    # Callers pass the address normalised (identity.users.normalize_email), as stored.
    return hashlib.sha256(b"lockout:" + email.encode()).hexdigest()[:40]


def _keys(email: str) -> dict[str, str]:
    subject = _subject(email)
    return {name: f"lock:{name}:{subject}" for name in ("fail", "wait", "block", "busy",
                                                         "notified")}


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`begin`. ``allowed``: check the password, then call
    :func:`failed` or :func:`succeeded`. Otherwise ``retry_after`` seconds to wait and
    ``blocked`` when the account is blocked (rather than slowed down)."""

    allowed: bool
    retry_after: int = 0
    blocked: bool = False


@dataclass(frozen=True)
class Failure:
    failures: int
    retry_after: int = 0
    blocked: bool = False
    # True once per block episode (window): tell the owner.
    notify: bool = False
    blocked_until: float = 0.0


def _until_value(raw, now: float) -> float:
    try:
        until = float(raw) if raw else 0.0
    except ValueError:
        return 0.0
    return until if until > now else 0.0


def failures_key(email: str) -> str:
    """The store key of :func:`failures` (to read it along with other keys)."""
    return _keys(email)["fail"]


def failures(kv, email: str) -> int:
    """Failures counted for this address within the window."""
    raw = kv.get(failures_key(email))
    return int(raw) if raw else 0


def delay_for(settings, failures_: int) -> float:
    """Seconds to wait after the ``failures_``-th failure (0: none)."""
    limits = settings.rate_limits
    extra = failures_ - limits.account_failures_before_delay
    if extra < 0:
        return 0.0
    return min(limits.account_delay_max, limits.account_delay_base * 2 ** min(extra, 40))


def begin(kv, settings, email: str) -> Decision:
    """Before checking a password for ``email``. When allowed, the attempt is already
    counted as a failure and holds the account's lock until :func:`failed` or
    :func:`succeeded` (or :func:`release`)."""
    keys = _keys(email)
    now = clock()
    # The lock, both gates read and the attempt counted: one command on Redis.
    taken, gates = kv.run(BEGIN_ATTEMPT, [keys["busy"], keys["fail"], keys["block"],
                                          keys["wait"]],
                          [BUSY_TTL, repr(now), settings.rate_limits.account_block_window])
    if not taken:
        return Decision(False, BUSY_RETRY)
    for raw, blocked in zip(gates, (True, False)):
        until = _until_value(raw, now)
        if until:  # the store has let the lock go and counted nothing
            return Decision(False, max(1, math.ceil(until - now)), blocked)
    return Decision(True)


def failed(kv, settings, email: str) -> Failure:
    """The password was wrong (or the account unknown): set the delay or the block."""
    limits = settings.rate_limits
    keys = _keys(email)
    now = clock()
    try:
        count = int(kv.get(keys["fail"]) or 0)
        if count >= limits.account_block_after:
            until = now + limits.account_block_duration
            kv.set(keys["block"], repr(until), limits.account_block_duration + 1)
            notify = kv.set_if_absent(keys["notified"], "1", limits.account_block_window)
            return Failure(count, limits.account_block_duration, True, notify, until)
        delay = delay_for(settings, count)
        if delay:
            kv.set(keys["wait"], repr(now + delay), math.ceil(delay) + 1)
        return Failure(count, math.ceil(delay))
    finally:
        kv.delete(keys["busy"])


def succeeded(kv, email: str) -> None:
    """A successful login: the failures are forgotten."""
    keys = _keys(email)
    kv.delete(keys["fail"], keys["wait"], keys["busy"])


def release(kv, email: str) -> None:
    """Let go of the lock without counting anything (the attempt was not made)."""
    kv.delete(_keys(email)["busy"])


def clear(kv, email: str) -> None:
    """Everything about this address, block included. Call it after a successful
    password reset, so that the owner can sign in at once."""
    kv.delete(*_keys(email).values())


def blocked_until(kv, email: str) -> float:
    """When the block of this address ends (a Unix time), or 0 when it is not blocked."""
    now = clock()
    return _until_value(kv.get(_keys(email)["block"]), now)

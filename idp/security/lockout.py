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

The mechanism is a :class:`Gate`, which ``mfa_lockout`` uses too for second-factor
codes, with its own settings and keys. Keys hold a digest of the (normalised) address,
never the address itself. Times are read from
:data:`clock` (tests move it forward); TTLs only clean up.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

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


@dataclass(frozen=True)
class Decision:
    """The outcome of ``begin``. ``allowed``: check the secret, then call ``failed`` or
    ``succeeded``. Otherwise ``retry_after`` seconds to wait and ``blocked`` when the
    account is blocked (rather than slowed down)."""

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


@dataclass(frozen=True)
class Limits:
    """How one kind of secret is guarded: failures counted within ``window`` seconds (from
    the first); from ``failures_before_delay`` on, a wait of ``delay_base`` seconds
    doubling up to ``delay_max``; from ``block_after`` on, a block of ``block_duration``."""

    window: int
    failures_before_delay: int
    delay_base: float
    delay_max: float
    block_after: int
    block_duration: int


def _until_value(raw, now: float) -> float:
    try:
        until = float(raw) if raw else 0.0
    except ValueError:
        return 0.0
    return until if until > now else 0.0


class Gate:
    """The failures of one kind of secret (passwords here, second-factor codes in
    ``mfa_lockout``) counted per subject in the store, under ``<namespace>:<key>:<subject>``.
    ``limits`` reads the :class:`Limits` from the settings; ``now`` reads the time (each
    module's ``clock``, which tests move)."""

    KEY_NAMES = ("fail", "wait", "block", "busy", "notified")

    def __init__(self, namespace: str, limits: Callable[[Any], Limits],
                 now: Callable[[], float]) -> None:
        self.namespace, self.limits, self.now = namespace, limits, now

    def keys(self, subject: str) -> dict[str, str]:
        return {name: f"{self.namespace}:{name}:{subject}" for name in self.KEY_NAMES}

    def delay_for(self, settings, failures_: int) -> float:
        """Seconds to wait after the ``failures_``-th failure (0: none)."""
        limits = self.limits(settings)
        extra = failures_ - limits.failures_before_delay
        if extra < 0:
            return 0.0
        return min(limits.delay_max, limits.delay_base * 2 ** min(extra, 40))

    def begin(self, kv, settings, subject: str) -> Decision:
        """Before checking a secret. When allowed, the attempt is already counted as a
        failure and holds the subject's lock until :meth:`failed`, :meth:`forget`,
        :meth:`take_back` or :meth:`release`."""
        keys = self.keys(subject)
        now = self.now()
        # The lock, both gates read and the attempt counted: one command on Redis.
        taken, gates = kv.run(BEGIN_ATTEMPT, [keys["busy"], keys["fail"], keys["block"],
                                              keys["wait"]],
                              [BUSY_TTL, repr(now), self.limits(settings).window])
        if not taken:
            return Decision(False, BUSY_RETRY)
        for raw, blocked in zip(gates, (True, False)):
            until = _until_value(raw, now)
            if until:  # the store has let the lock go and counted nothing
                return Decision(False, max(1, math.ceil(until - now)), blocked)
        return Decision(True)

    def failed(self, kv, settings, subject: str) -> Failure:
        """The secret was wrong: set the delay or the block, and let the lock go."""
        limits = self.limits(settings)
        keys = self.keys(subject)
        now = self.now()
        try:
            count = int(kv.get(keys["fail"]) or 0)
            if count >= limits.block_after:
                until = now + limits.block_duration
                kv.set(keys["block"], repr(until), limits.block_duration + 1)
                notify = kv.set_if_absent(keys["notified"], "1", limits.window)
                return Failure(count, limits.block_duration, True, notify, until)
            delay = self.delay_for(settings, count)
            if delay:
                kv.set(keys["wait"], repr(now + delay), math.ceil(delay) + 1)
            return Failure(count, math.ceil(delay))
        finally:
            kv.delete(keys["busy"])

    def forget(self, kv, subject: str) -> None:
        """A success that wipes the failures (the delay too; a block stays)."""
        keys = self.keys(subject)
        kv.delete(keys["fail"], keys["wait"], keys["busy"])

    def take_back(self, kv, settings, subject: str) -> None:
        """A success that was no failure, the earlier ones still counting. Only the
        lock's holder writes the count: reading it and writing it back (with the time
        left of its window) is safe."""
        keys = self.keys(subject)
        try:
            count = int(kv.get(keys["fail"]) or 0)
            remaining = kv.ttl(keys["fail"])
            if count <= 1 or remaining <= 0:
                kv.delete(keys["fail"])
            else:
                kv.set(keys["fail"], str(count - 1),
                       min(remaining, self.limits(settings).window))
        finally:
            kv.delete(keys["busy"])

    def release(self, kv, subject: str) -> None:
        """Let go of the lock, the attempt's count left as it is."""
        kv.delete(self.keys(subject)["busy"])

    def clear(self, kv, subject: str) -> None:
        """Everything about the subject, block included."""
        kv.delete(*self.keys(subject).values())

    def failures_key(self, subject: str) -> str:
        return self.keys(subject)["fail"]

    def failures(self, kv, subject: str) -> int:
        """Failures counted within the window."""
        raw = kv.get(self.failures_key(subject))
        return int(raw) if raw else 0

    def blocked_until(self, kv, subject: str) -> float:
        """When the subject's block ends (a Unix time), or 0 when it is not blocked."""
        return _until_value(kv.get(self.keys(subject)["block"]), self.now())


def _password_limits(settings) -> Limits:
    limits = settings.rate_limits
    return Limits(window=limits.account_block_window,
                  failures_before_delay=limits.account_failures_before_delay,
                  delay_base=limits.account_delay_base, delay_max=limits.account_delay_max,
                  block_after=limits.account_block_after,
                  block_duration=limits.account_block_duration)


PASSWORDS = Gate("lock", _password_limits, now=lambda: clock())


def _subject(email: str) -> str:
    # Callers pass the address normalised (identity.users.normalize_email), as stored.
    return hashlib.sha256(b"lockout:" + email.encode()).hexdigest()[:40]


def failures_key(email: str) -> str:
    """The store key of :func:`failures` (to read it along with other keys)."""
    return PASSWORDS.failures_key(_subject(email))


def failures(kv, email: str) -> int:
    """Failures counted for this address within the window."""
    return PASSWORDS.failures(kv, _subject(email))


def delay_for(settings, failures_: int) -> float:
    """Seconds to wait after the ``failures_``-th failure (0: none)."""
    return PASSWORDS.delay_for(settings, failures_)


def begin(kv, settings, email: str) -> Decision:
    """Before checking a password for ``email``. When allowed, the attempt is already
    counted as a failure and holds the account's lock until :func:`failed` or
    :func:`succeeded` (or :func:`release`)."""
    return PASSWORDS.begin(kv, settings, _subject(email))


def failed(kv, settings, email: str) -> Failure:
    """The password was wrong (or the account unknown): set the delay or the block."""
    return PASSWORDS.failed(kv, settings, _subject(email))


def succeeded(kv, email: str) -> None:
    """A successful login: the failures are forgotten."""
    PASSWORDS.forget(kv, _subject(email))


def release(kv, email: str) -> None:
    """Let go of the lock without judging the attempt (it was not made)."""
    PASSWORDS.release(kv, _subject(email))


def clear(kv, email: str) -> None:
    """Everything about this address, block included. Call it after a successful
    password reset, so that the owner can sign in at once."""
    PASSWORDS.clear(kv, _subject(email))


def blocked_until(kv, email: str) -> float:
    """When the block of this address ends (a Unix time), or 0 when it is not blocked."""
    return PASSWORDS.blocked_until(kv, _subject(email))

"""A small key-value store: Redis in production, an in-process dictionary for the
one-process default (and only then: it is not shared between processes).

Used for what is short-lived and hot: browser sessions, self-service flows,
rate-limit counters, one-time markers (nonces, assertion ids).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import redis
from redis.exceptions import NoScriptError, ResponseError


class KeyValueStore(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def get_many(self, *keys: str) -> list[bytes | None]: ...
    def set(self, key: str, value: bytes | str, ttl: int | None = None) -> None: ...
    def set_if_absent(self, key: str, value: bytes | str, ttl: int) -> bool: ...
    def delete(self, *keys: str) -> None: ...
    def write(self, sets: Mapping[str, tuple[bytes, int]], deletes: Iterable[str] = ()) -> None: ...
    def incr(self, key: str, ttl: int) -> int: ...
    def incr_and_get(self, key: str, ttl: int, other: str) -> tuple[int, bytes | None]: ...
    def begin_attempt(self, lock: str, lock_ttl: int, gates: Sequence[str], now: float,
                      counter: str, counter_ttl: int) -> tuple[bool, list[bytes | None]]: ...
    def ttl(self, key: str) -> int: ...
    def expire(self, key: str, ttl: int) -> None: ...
    def flush_prefix(self, prefix: str) -> None: ...


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


class MemoryStore:
    """Thread-safe dictionary with expiry. For one process only."""

    shared_between_processes = False

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._live(key)
            return item[0] if item else None

    def get_many(self, *keys: str) -> list[bytes | None]:
        with self._lock:
            return [item[0] if (item := self._live(key)) else None for key in keys]

    def set(self, key: str, value: bytes | str, ttl: int | None = None) -> None:
        with self._lock:
            expires = time.monotonic() + ttl if ttl else None
            self._data[key] = (_as_bytes(value), expires)
            if len(self._data) % 1000 == 0:
                self._sweep()

    def set_if_absent(self, key: str, value: bytes | str, ttl: int) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (_as_bytes(value), time.monotonic() + ttl)
            return True

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def write(self, sets: Mapping[str, tuple[bytes, int]], deletes: Iterable[str] = ()) -> None:
        """Set each key of ``sets`` to its (value, ttl) and delete ``deletes``, at once."""
        with self._lock:
            expires = time.monotonic()
            for key, (value, ttl) in sets.items():
                self._data[key] = (_as_bytes(value), expires + ttl)
            for key in deletes:
                self._data.pop(key, None)

    def _incr(self, key: str, ttl: int) -> int:
        # The window starts at the first hit: a later one keeps the expiry.
        item = self._live(key)
        if item is None:
            self._data[key] = (b"1", time.monotonic() + ttl)
            return 1
        value = int(item[0]) + 1
        self._data[key] = (str(value).encode(), item[1])
        return value

    def incr(self, key: str, ttl: int) -> int:
        with self._lock:
            return self._incr(key, ttl)

    def incr_and_get(self, key: str, ttl: int, other: str) -> tuple[int, bytes | None]:
        """``incr(key, ttl)`` and ``get(other)`` in one step."""
        with self._lock:
            value = self._incr(key, ttl)
            found = self._live(other)
            return value, (found[0] if found else None)

    def begin_attempt(self, lock: str, lock_ttl: int, gates: Sequence[str], now: float,
                      counter: str, counter_ttl: int) -> tuple[bool, list[bytes | None]]:
        """Take ``lock`` (for ``lock_ttl`` seconds) unless it is held: ``(False, [])``.
        Then read ``gates``, each a time (seconds since the epoch) before which no attempt
        is taken: when one is still ahead of ``now``, let the lock go; otherwise count the
        attempt on ``counter`` (``incr``) and keep the lock. Returns ``(True, the gates
        as read)``. One step here, one command on Redis (idp/security/lockout.py)."""
        with self._lock:
            if self._live(lock) is not None:
                return False, []
            found = [item[0] if (item := self._live(key)) else None for key in gates]
            if not any(_is_ahead(raw, now) for raw in found):
                self._data[lock] = (b"1", time.monotonic() + lock_ttl)
                self._incr(counter, counter_ttl)
            return True, found

    def ttl(self, key: str) -> int:
        with self._lock:
            item = self._live(key)
            if item is None:
                return -2
            if item[1] is None:
                return -1
            return max(0, int(item[1] - time.monotonic()))

    def expire(self, key: str, ttl: int) -> None:
        with self._lock:
            item = self._live(key)
            if item is not None:
                self._data[key] = (item[0], time.monotonic() + ttl)

    def flush_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._data if k.startswith(prefix)]:
                del self._data[key]

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[key]


# INCR, EXPIRE NX (the window starts at the first hit) and GET of another key, as one
# command: one round trip where a MULTI/EXEC pipeline and a GET took two and five commands.
_INCR_AND_GET = """
local value = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return {value, redis.call('GET', KEYS[2])}
"""


# MemoryStore.begin_attempt, as one command. A gate holds repr(a float): tonumber reads
# the repr as float() does (and a value that is no number closes no gate, in both).
_BEGIN_ATTEMPT = """
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
"""


_SCRIPT_DIGESTS = {source: hashlib.sha1(source.encode()).hexdigest()
                   for source in (_INCR_AND_GET, _BEGIN_ATTEMPT)}


def _is_ahead(raw: bytes | None, now: float) -> bool:
    try:
        return raw is not None and float(raw) > now
    except ValueError:
        return False


class _ThreadConnection(threading.local):
    """One Redis connection per thread (and per process: one inherited through a fork
    is left to the parent)."""

    connection = None
    pid = 0


class RedisStore:
    """The store on Redis, for several processes and machines.

    Each thread talks to Redis on a connection of its own (redis-py's ``Connection``
    and its hiredis parser), not through the client's pool: redis-py 8's client spent
    about 20 µs per command on checking a connection out and in, its deprecation
    wrappers and its metrics, over a 35 µs command (docs/performance-history.md, twelfth pass).
    What made the pool safe stays: redis-py closes a connection on any error while
    reading (an interrupted read cannot hand its reply to the next command), a reply
    that is an error is read before it is raised (every reply of a batch is read), a
    connection idle for ``health_check_interval`` is pinged first, and a command that
    meets a closed connection is sent again on a new one, with the client's retry
    policy. ``client`` (the pooled client) serves the rare commands (SCAN)."""

    shared_between_processes = True

    def __init__(self, url: str, prefix: str = "idp:") -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                           health_check_interval=30)
        self.prefix = prefix
        self._thread = _ThreadConnection()

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _connection(self):
        thread = self._thread
        connection = thread.connection
        if connection is None or thread.pid != os.getpid():
            pool = self.client.connection_pool
            connection = thread.connection = pool.connection_class(**pool.connection_kwargs)
            thread.pid = os.getpid()
        return connection

    def _run(self, *commands: tuple) -> list:
        """Send ``commands`` in one write and read their replies, in one round trip;
        a reply that is an error is raised once every reply is read."""
        connection = self._connection()

        def send_and_read() -> list:
            if len(commands) == 1:
                connection.send_command(*commands[0])
            else:
                connection.send_packed_command(connection.pack_commands(commands))
            replies, error = [], None
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except ResponseError as reply_error:
                    replies.append(None)
                    error = error or reply_error
            if error is not None:
                raise error
            return replies

        return connection.retry.call_with_retry(send_and_read,
                                                lambda _error: connection.disconnect())

    def _one(self, *command):
        return self._run(command)[0]

    def get(self, key: str) -> bytes | None:
        return self._one("GET", self._k(key))

    def get_many(self, *keys: str) -> list[bytes | None]:
        """One MGET: one round trip."""
        return self._one("MGET", *(self._k(k) for k in keys)) if keys else []

    def set(self, key: str, value: bytes | str, ttl: int | None = None) -> None:
        self._one("SET", self._k(key), value, *(("EX", ttl) if ttl else ()))

    def set_if_absent(self, key: str, value: bytes | str, ttl: int) -> bool:
        return self._one("SET", self._k(key), value, "EX", ttl, "NX") is not None

    def delete(self, *keys: str) -> None:
        if keys:
            self._one("DEL", *(self._k(k) for k in keys))

    def write(self, sets: Mapping[str, tuple[bytes, int]], deletes: Iterable[str] = ()) -> None:
        """SETs and a DEL in one round trip. Not a transaction (MULTI/EXEC would double
        the commands): no reader needs them at once."""
        commands = [("SET", self._k(key), value, "EX", ttl)
                    for key, (value, ttl) in sets.items()]
        deletes = [self._k(k) for k in deletes]
        if deletes:
            commands.append(("DEL", *deletes))
        if commands:
            self._run(*commands)

    def incr(self, key: str, ttl: int) -> int:
        # INCR then EXPIRE NX in one round trip: the window starts at the first hit. No
        # MULTI/EXEC: EXPIRE NX only sets a missing TTL, whatever runs in between.
        value, _ = self._run(("INCR", self._k(key)), ("EXPIRE", self._k(key), ttl, "NX"))
        return int(value)

    def _script(self, source: str, keys: Sequence[str], *args):
        """Run a Lua script by its digest (one command), sending its source only when
        the server does not hold it yet (or lost it: a restart, SCRIPT FLUSH)."""
        keys = [self._k(key) for key in keys]
        try:
            return self._one("EVALSHA", _SCRIPT_DIGESTS[source], len(keys), *keys, *args)
        except NoScriptError:
            return self._one("EVAL", source, len(keys), *keys, *args)  # and caches it

    def incr_and_get(self, key: str, ttl: int, other: str) -> tuple[int, bytes | None]:
        value, found = self._script(_INCR_AND_GET, (key, other), ttl)
        return int(value), found

    def begin_attempt(self, lock: str, lock_ttl: int, gates: Sequence[str], now: float,
                      counter: str, counter_ttl: int) -> tuple[bool, list[bytes | None]]:
        taken, found = self._script(_BEGIN_ATTEMPT, (lock, counter, *gates), lock_ttl,
                                    repr(now), counter_ttl)
        return bool(taken), list(found)

    def ttl(self, key: str) -> int:
        return int(self._one("TTL", self._k(key)))

    def expire(self, key: str, ttl: int) -> None:
        self._one("EXPIRE", self._k(key), ttl)

    def flush_prefix(self, prefix: str) -> None:
        # Rare (tests, maintenance): the pooled client's SCAN iterator.
        batch = []
        for key in self.client.scan_iter(match=self._k(prefix) + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                self.client.delete(*batch)
                batch.clear()
        if batch:
            self.client.delete(*batch)


def make_store(redis_url: str, prefix: str = "idp:") -> KeyValueStore:
    return RedisStore(redis_url, prefix) if redis_url else MemoryStore()

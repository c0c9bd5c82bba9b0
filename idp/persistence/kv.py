"""A small key-value store: Redis in production, an in-process dictionary for the
one-process default (and only then: it is not shared between processes).

Used for what is short-lived and hot: browser sessions, self-service flows,
rate-limit counters, one-time markers (nonces, assertion ids).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Protocol


class KeyValueStore(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def get_many(self, *keys: str) -> list[bytes | None]: ...
    def set(self, key: str, value: bytes | str, ttl: int | None = None) -> None: ...
    def set_if_absent(self, key: str, value: bytes | str, ttl: int) -> bool: ...
    def delete(self, *keys: str) -> None: ...
    def write(self, sets: Mapping[str, tuple[bytes, int]], deletes: Iterable[str] = ()) -> None: ...
    def incr(self, key: str, ttl: int) -> int: ...
    def incr_and_get(self, key: str, ttl: int, other: str) -> tuple[int, bytes | None]: ...
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

    def incr(self, key: str, ttl: int) -> int:
        with self._lock:
            item = self._live(key)
            if item is None:
                self._data[key] = (b"1", time.monotonic() + ttl)
                return 1
            value = int(item[0]) + 1
            self._data[key] = (str(value).encode(), item[1])
            return value

    def incr_and_get(self, key: str, ttl: int, other: str) -> tuple[int, bytes | None]:
        """``incr(key, ttl)`` and ``get(other)`` in one step."""
        with self._lock:
            item = self._live(key)
            if item is None:
                value = 1
                self._data[key] = (b"1", time.monotonic() + ttl)
            else:
                value = int(item[0]) + 1
                self._data[key] = (str(value).encode(), item[1])
            found = self._live(other)
            return value, (found[0] if found else None)

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


class RedisStore:
    shared_between_processes = True

    def __init__(self, url: str, prefix: str = "idp:") -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                           health_check_interval=30)
        self.prefix = prefix
        self._incr_and_get = self.client.register_script(_INCR_AND_GET)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def get(self, key: str) -> bytes | None:
        return self.client.get(self._k(key))

    def get_many(self, *keys: str) -> list[bytes | None]:
        """One MGET: one round trip."""
        return self.client.mget([self._k(k) for k in keys]) if keys else []

    def set(self, key: str, value: bytes | str, ttl: int | None = None) -> None:
        self.client.set(self._k(key), value, ex=ttl or None)

    def set_if_absent(self, key: str, value: bytes | str, ttl: int) -> bool:
        return bool(self.client.set(self._k(key), value, ex=ttl, nx=True))

    def delete(self, *keys: str) -> None:
        if keys:
            self.client.delete(*(self._k(k) for k in keys))

    def write(self, sets: Mapping[str, tuple[bytes, int]], deletes: Iterable[str] = ()) -> None:
        """SETs and a DEL in one round trip (one command when there is only one). Not a
        transaction (MULTI/EXEC would double the commands): no reader needs them at once."""
        deletes = [self._k(k) for k in deletes]
        if len(sets) + bool(deletes) > 1:
            pipe = self.client.pipeline(transaction=False)
            for key, (value, ttl) in sets.items():
                pipe.set(self._k(key), value, ex=ttl)
            if deletes:
                pipe.delete(*deletes)
            pipe.execute()
        elif sets:
            ((key, (value, ttl)),) = sets.items()
            self.client.set(self._k(key), value, ex=ttl)
        elif deletes:
            self.client.delete(*deletes)

    def incr(self, key: str, ttl: int) -> int:
        # INCR then EXPIRE NX in one round trip: the window starts at the first hit. No
        # MULTI/EXEC: EXPIRE NX only sets a missing TTL, whatever runs in between.
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(self._k(key))
        pipe.expire(self._k(key), ttl, nx=True)
        value, _ = pipe.execute()
        return int(value)

    def incr_and_get(self, key: str, ttl: int, other: str) -> tuple[int, bytes | None]:
        value, found = self._incr_and_get(keys=[self._k(key), self._k(other)], args=[ttl])
        return int(value), found

    def ttl(self, key: str) -> int:
        return int(self.client.ttl(self._k(key)))

    def expire(self, key: str, ttl: int) -> None:
        self.client.expire(self._k(key), ttl)

    def flush_prefix(self, prefix: str) -> None:
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

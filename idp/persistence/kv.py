"""A small key-value store: Redis in production, an in-process dictionary for the
one-process default (and only then: it is not shared between processes).

Used for what is short-lived and hot: browser sessions, self-service flows,
rate-limit counters, one-time markers (nonces, assertion ids). It knows nothing of what
it stores. A caller that needs several steps done atomically (a lockout, a rate
limit) brings its own :class:`Script`: the same steps in Lua for Redis and in Python
for the in-process store, side by side in the caller's module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from redis.sentinel import Sentinel

# What a store raises when it cannot be reached (the in-process store never does).
UNAVAILABLE: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError,
                                           redis.exceptions.TimeoutError)

# No key outlives this (seconds), whatever a caller asks: a bug or a forged value must
# not keep data forever.
MAX_TTL = 400 * 86400


def capped(ttl: int | float) -> int:
    return max(1, min(int(ttl), MAX_TTL))


class Keys(Protocol):
    """What a :class:`Script`'s Python half may do, inside the store's lock."""

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes | str, ttl: int) -> None: ...
    def incr(self, key: str, ttl: int) -> int: ...
    def delete(self, key: str) -> None: ...


@dataclass(frozen=True)
class Script:
    """Steps run atomically: ``lua`` on Redis (``KEYS``, ``ARGV``), ``local`` on the
    in-process store (``local(keys_view, keys, args)``). Both must do the same thing."""

    lua: str
    local: Callable[[Keys, list[str], list[Any]], Any]


class KeyValueStore(Protocol):
    shared_between_processes: bool

    def get(self, key: str) -> bytes | None: ...
    def get_many(self, *keys: str) -> list[bytes | None]: ...
    def set(self, key: str, value: bytes | str, ttl: int | None = None) -> None: ...
    def set_if_absent(self, key: str, value: bytes | str, ttl: int) -> bool: ...
    def delete(self, *keys: str) -> None: ...
    def write(self, sets: Mapping[str, tuple[bytes, int]], deletes: Iterable[str] = ()) -> None: ...
    def incr(self, key: str, ttl: int) -> int: ...
    def ttl(self, key: str) -> int: ...
    def expire(self, key: str, ttl: int) -> None: ...
    def flush_prefix(self, prefix: str) -> None: ...
    def ping(self) -> bool: ...
    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any] = ()) -> Any: ...


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


class MemoryStore:
    """Thread-safe dictionary with expiry. For one process only."""

    shared_between_processes = False

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()
        self._view = _LockedView(self)

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item

    def _put(self, key: str, value: bytes | str, ttl: int | None) -> None:
        expires = time.monotonic() + capped(ttl) if ttl else None
        self._data[key] = (_as_bytes(value), expires)
        if len(self._data) % 1000 == 0:
            self._sweep()

    def _incr(self, key: str, ttl: int) -> int:
        # The window starts at the first hit: a later one keeps the expiry.
        item = self._live(key)
        if item is None:
            self._put(key, b"1", ttl)
            return 1
        value = int(item[0]) + 1
        self._data[key] = (str(value).encode(), item[1])
        return value

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._live(key)
            return item[0] if item else None

    def get_many(self, *keys: str) -> list[bytes | None]:
        with self._lock:
            return [item[0] if (item := self._live(key)) else None for key in keys]

    def set(self, key: str, value: bytes | str, ttl: int | None = None) -> None:
        with self._lock:
            self._put(key, value, ttl)

    def set_if_absent(self, key: str, value: bytes | str, ttl: int) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._put(key, value, ttl)
            return True

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def write(self, sets: Mapping[str, tuple[bytes, int]], deletes: Iterable[str] = ()) -> None:
        """Set each key of ``sets`` to its (value, ttl) and delete ``deletes``."""
        with self._lock:
            for key, (value, ttl) in sets.items():
                self._put(key, value, ttl)
            for key in deletes:
                self._data.pop(key, None)

    def incr(self, key: str, ttl: int) -> int:
        with self._lock:
            return self._incr(key, ttl)

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
                self._data[key] = (item[0], time.monotonic() + capped(ttl))

    def flush_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._data if k.startswith(prefix)]:
                del self._data[key]

    def ping(self) -> bool:
        return True

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """Run ``script``'s Python half on ``keys`` and ``args``, atomically."""
        with self._lock:
            return script.local(self._view, list(keys), list(args))

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[key]


class _LockedView:
    """The :class:`Keys` a script's Python half works on, the store's lock held."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def get(self, key: str) -> bytes | None:
        item = self.store._live(key)
        return item[0] if item else None

    def set(self, key: str, value: bytes | str, ttl: int) -> None:
        self.store._put(key, value, ttl)

    def incr(self, key: str, ttl: int) -> int:
        return self.store._incr(key, ttl)

    def delete(self, key: str) -> None:
        self.store._data.pop(key, None)


# Seconds before a command or a connection attempt gives up; connections idle this long
# are checked before use.
CLIENT_OPTIONS = {"socket_timeout": 5, "socket_connect_timeout": 5, "health_check_interval": 30}


def sentinel_client(url: str, sentinels: Sequence[str], service: str) -> redis.Redis:
    """The current master of ``service``, as Redis Sentinel names it, with the database
    and password of ``url``; the client follows a failover by itself."""
    addresses = [(host, int(port)) for host, _, port in
                 (address.rpartition(":") for address in sentinels)]
    master = {k: v for k, v in redis.connection.parse_url(url).items()
              if k in ("db", "username", "password")}
    return Sentinel(addresses, socket_timeout=5).master_for(service, **master,
                                                            **CLIENT_OPTIONS)


class RedisStore:
    """The store on Redis, for several processes and machines: one pooled client,
    pipelines for several commands, registered Lua scripts for atomic steps."""

    shared_between_processes = True

    def __init__(self, url: str, prefix: str = "idp:",
                 client: redis.Redis | None = None) -> None:
        self.client = client or redis.Redis.from_url(url, **CLIENT_OPTIONS)
        self.prefix = prefix
        self.scripts: dict[Script, Any] = {}

    def _k(self, key: str) -> str:
        return self.prefix + key

    def get(self, key: str) -> bytes | None:
        return self.client.get(self._k(key))

    def get_many(self, *keys: str) -> list[bytes | None]:
        return self.client.mget([self._k(k) for k in keys]) if keys else []

    def set(self, key: str, value: bytes | str, ttl: int | None = None) -> None:
        self.client.set(self._k(key), value, ex=capped(ttl) if ttl else None)

    def set_if_absent(self, key: str, value: bytes | str, ttl: int) -> bool:
        return bool(self.client.set(self._k(key), value, ex=capped(ttl), nx=True))

    def delete(self, *keys: str) -> None:
        if keys:
            self.client.delete(*(self._k(k) for k in keys))

    def write(self, sets: Mapping[str, tuple[bytes, int]], deletes: Iterable[str] = ()) -> None:
        """SETs and a DEL in one round trip (not a transaction: no reader needs them at
        once)."""
        pipe = self.client.pipeline(transaction=False)
        for key, (value, ttl) in sets.items():
            pipe.set(self._k(key), value, ex=capped(ttl))
        deletes = [self._k(k) for k in deletes]
        if deletes:
            pipe.delete(*deletes)
        pipe.execute()

    def incr(self, key: str, ttl: int) -> int:
        # EXPIRE NX only sets a missing TTL: the window starts at the first hit.
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(self._k(key))
        pipe.expire(self._k(key), capped(ttl), nx=True)
        value, _ = pipe.execute()
        return int(value)

    def ttl(self, key: str) -> int:
        return int(self.client.ttl(self._k(key)))

    def expire(self, key: str, ttl: int) -> None:
        self.client.expire(self._k(key), capped(ttl))

    def flush_prefix(self, prefix: str) -> None:
        batch = []
        for key in self.client.scan_iter(match=self._k(prefix) + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                self.client.delete(*batch)
                batch.clear()
        if batch:
            self.client.delete(*batch)

    def ping(self) -> bool:
        return bool(self.client.ping())

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """Run ``script``'s Lua half (by its digest; redis-py sends the source when the
        server lacks it) on ``keys`` and ``args``."""
        registered = self.scripts.get(script)
        if registered is None:
            registered = self.scripts[script] = self.client.register_script(script.lua)
        return registered(keys=[self._k(k) for k in keys], args=list(args))


def make_store(redis_url: str, prefix: str = "idp:", sentinels: Sequence[str] = (),
               sentinel_service: str = "") -> KeyValueStore:
    """Redis (directly, or through Sentinel when ``sentinels`` are given), or the
    in-process store when there is no URL."""
    if not redis_url:
        return MemoryStore()
    if sentinels:
        return RedisStore(redis_url, prefix,
                          client=sentinel_client(redis_url, sentinels, sentinel_service))
    return RedisStore(redis_url, prefix)

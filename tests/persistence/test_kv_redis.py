"""The key-value store's operations and the atomic scripts of security/ (their Lua and
Python halves must agree), on the in-process store and, when the suite runs on Redis,
on Redis."""

from __future__ import annotations

import os
import uuid

import pytest

from idp.persistence.kv import MAX_TTL, MemoryStore, RedisStore
from idp.security.lockout import BEGIN_ATTEMPT
from idp.security.ratelimit import COUNT_AND_READ_PREVIOUS

TEST_REDIS = os.environ.get("IDP_TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(not TEST_REDIS, reason="the suite runs without Redis")


def _redis_store() -> RedisStore:
    return RedisStore(TEST_REDIS, f"idp-test-kv:{uuid.uuid4().hex[:8]}:")


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    kv = _redis_store()
    yield kv
    kv.flush_prefix("")
    kv.client.close()


@pytest.fixture
def redis_store():
    if not TEST_REDIS:
        pytest.skip("the suite runs without Redis")
    kv = _redis_store()
    yield kv
    kv.flush_prefix("")
    kv.client.close()


def test_get_set_and_delete(store):
    assert store.get("a") is None
    store.set("a", "1")
    store.set("b", b"2", 30)
    assert store.get("a") == b"1"
    assert store.get_many("a", "b", "c") == [b"1", b"2", None]
    assert store.get_many() == []
    assert store.ttl("a") == -1 and 25 <= store.ttl("b") <= 30 and store.ttl("c") == -2
    store.delete("a", "b", "never-there")
    store.delete()
    assert store.get_many("a", "b") == [None, None]


def test_set_if_absent_sets_once(store):
    assert store.set_if_absent("once", "first", 60) is True
    assert store.set_if_absent("once", "second", 60) is False
    assert store.get("once") == b"first"
    assert 55 <= store.ttl("once") <= 60


def test_counters_start_their_window_at_the_first_hit(store):
    assert store.incr("n", 60) == 1
    store.expire("n", 5)
    assert store.incr("n", 60) == 2
    assert store.ttl("n") <= 5  # a later hit does not move the window


def test_no_key_outlives_the_cap(store):
    store.set("forever", b"x", 10 ** 10)
    assert store.set_if_absent("again", b"x", 10 ** 10) is True
    assert 0 < store.ttl("forever") <= MAX_TTL and 0 < store.ttl("again") <= MAX_TTL


def test_write_sets_and_deletes_at_once(store):
    store.set("old", b"x", 60)
    store.write({"a": (b"1", 60), "b": (b"2", 30)}, deletes=["old"])
    assert store.get_many("a", "b", "old") == [b"1", b"2", None]
    assert 25 <= store.ttl("b") <= 30


def test_the_rate_limit_script_counts_and_reads_the_previous_window(store):
    store.set("previous", b"7", 60)
    assert [int(store.run(COUNT_AND_READ_PREVIOUS, ["now", "previous"], [30])[0]),
            store.run(COUNT_AND_READ_PREVIOUS, ["now", "absent"], [30])[1]] == [1, None]
    value, previous = store.run(COUNT_AND_READ_PREVIOUS, ["now", "previous"], [30])
    assert (int(value), previous) == (3, b"7")
    assert 25 <= store.ttl("now") <= 30


def begin(store, gates, now=1_000_000.5):
    taken, found = store.run(BEGIN_ATTEMPT, ["lock", "count", *gates], [15, repr(now), 60])
    return bool(taken), list(found)


def test_an_attempt_takes_the_lock_and_counts_when_no_gate_is_closed(store):
    now = 1_000_000.5
    store.set("gate:a", repr(now - 1), 60)  # passed: open
    assert begin(store, ["gate:a", "gate:b"]) == (True, [repr(now - 1).encode(), None])
    assert store.get("lock") == b"1" and 10 <= store.ttl("lock") <= 15
    assert store.get("count") == b"1" and 55 <= store.ttl("count") <= 60
    # Held: nothing read, nothing counted.
    assert begin(store, ["gate:a"]) == (False, [])
    assert store.get("count") == b"1"
    store.delete("lock")
    store.expire("count", 5)
    assert begin(store, ["gate:a"])[0] is True
    assert store.get("count") == b"2" and store.ttl("count") <= 5  # the window stays


def test_a_closed_gate_lets_the_lock_go_and_counts_nothing(store):
    now = 1_000_000.5
    store.set("gate:b", repr(now + 0.25), 60)
    store.set("gate:x", b"not a time", 60)  # no number: closes nothing
    assert begin(store, ["gate:x", "gate:b"]) == \
        (True, [b"not a time", repr(now + 0.25).encode()])
    assert store.get("lock") is None and store.get("count") is None
    assert begin(store, ["gate:x"]) == (True, [b"not a time"])
    assert store.get("count") == b"1"


@needs_redis
def test_scripts_are_loaded_again_when_the_server_lost_them(redis_store):
    assert begin(redis_store, ["absent"]) == (True, [None])
    redis_store.client.script_flush()
    redis_store.delete("lock")
    assert begin(redis_store, ["absent"]) == (True, [None])
    assert redis_store.get("count") == b"2"

"""The key-value store's operations, on the in-process store and (when the suite runs
on Redis) on Redis, and what keeps Redis' per-thread connections safe: every reply of a
batch read, an interrupted read closing its connection, a connection per thread and per
process, the scripts reloaded when the server lost them."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
import redis

from idp.persistence.kv import MemoryStore, RedisStore

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
    store.set("other", b"x", 60)
    assert store.incr_and_get("m", 30, "other") == (1, b"x")
    assert store.incr_and_get("m", 30, "absent") == (2, None)
    assert 25 <= store.ttl("m") <= 30


def test_an_attempt_takes_the_lock_and_counts_when_no_gate_is_closed(store):
    now = 1_000_000.5
    store.set("gate:a", repr(now - 1), 60)  # passed: open
    assert store.begin_attempt("lock", 15, ("gate:a", "gate:b"), now, "count", 60) == \
        (True, [repr(now - 1).encode(), None])
    assert store.get("lock") == b"1" and 10 <= store.ttl("lock") <= 15
    assert store.get("count") == b"1" and 55 <= store.ttl("count") <= 60
    # Held: nothing read, nothing counted.
    assert store.begin_attempt("lock", 15, ("gate:a",), now, "count", 60) == (False, [])
    assert store.get("count") == b"1"
    store.delete("lock")
    store.expire("count", 5)
    assert store.begin_attempt("lock", 15, ("gate:a",), now, "count", 60)[0] is True
    assert store.get("count") == b"2" and store.ttl("count") <= 5  # the window stays


def test_a_closed_gate_lets_the_lock_go_and_counts_nothing(store):
    now = 1_000_000.5
    store.set("gate:b", repr(now + 0.25), 60)
    store.set("gate:x", b"not a time", 60)  # no number: closes nothing
    assert store.begin_attempt("lock", 15, ("gate:x", "gate:b"), now, "count", 60) == \
        (True, [b"not a time", repr(now + 0.25).encode()])
    assert store.get("lock") is None and store.get("count") is None
    assert store.begin_attempt("lock", 15, ("gate:x",), now, "count", 60) == \
        (True, [b"not a time"])
    assert store.get("count") == b"1"


@needs_redis
def test_an_error_reply_in_a_batch_leaves_no_reply_behind(redis_store):
    redis_store.set("word", b"not a number", 60)
    redis_store.set("next", b"its own value", 60)
    with pytest.raises(redis.ResponseError):
        redis_store.incr("word", 60)  # INCR fails; EXPIRE's reply must still be read
    assert redis_store.get("next") == b"its own value"
    assert redis_store.get("word") == b"not a number"


@needs_redis
def test_an_interrupted_read_closes_the_connection(redis_store):
    redis_store.set("first", b"1", 60)
    redis_store.set("second", b"2", 60)
    connection = redis_store._connection()
    parser = connection._parser
    original = parser.read_response

    def interrupted(*args, **kwargs):
        parser.read_response = original
        raise KeyboardInterrupt  # the reply to GET first stays unread on the socket

    parser.read_response = interrupted
    with pytest.raises(KeyboardInterrupt):
        redis_store.get("first")
    # The next command must get its own reply, not the one left unread.
    assert redis_store.get("second") == b"2"


@needs_redis
def test_each_thread_and_each_process_has_its_own_connection(redis_store, monkeypatch):
    mine = redis_store._connection()
    assert redis_store._connection() is mine
    seen = []
    worker = threading.Thread(target=lambda: seen.append(redis_store._connection()))
    worker.start()
    worker.join()
    assert seen and seen[0] is not mine
    # A forked child must not write on its parent's socket.
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)
    child = redis_store._connection()
    assert child is not mine
    redis_store.set("from-child", b"ok", 60)
    assert redis_store.get("from-child") == b"ok"


@needs_redis
def test_scripts_are_loaded_again_when_the_server_lost_them(redis_store):
    assert redis_store.incr_and_get("c", 60, "absent") == (1, None)
    redis_store.client.script_flush()
    assert redis_store.incr_and_get("c", 60, "absent") == (2, None)
    redis_store.client.script_flush()
    assert redis_store.begin_attempt("lock", 15, ("absent",), 1.0, "n", 60) == (True, [None])
    assert redis_store.get("n") == b"1"


@needs_redis
def test_a_connection_closed_by_the_server_is_opened_again(redis_store):
    redis_store.set("k", b"v", 60)
    connection = redis_store._connection()
    client_id = redis_store._one("CLIENT", "ID")
    redis_store.client.client_kill_filter(_id=client_id)
    try:
        redis_store.get("k")
    except redis.ConnectionError:
        pass  # as with the pooled client (no retry): this command may fail...
    assert redis_store.get("k") == b"v"  # ...the next one runs on a new connection
    assert redis_store._connection() is connection  # the same object, reconnected

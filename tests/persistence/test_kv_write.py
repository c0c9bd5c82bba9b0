"""The store's batched write (used by flows and sessions): on the in-process store by
default, on Redis in CI's second pass."""

from __future__ import annotations


def test_write_sets_with_their_ttls_and_deletes_at_once(svc):
    kv = svc.kv
    kv.set("old", b"x", 60)
    kv.set("other", b"y", 60)
    kv.write({"a": (b"1", 30), "b": ("2", 90)}, ["old", "other", "never-there"])
    assert kv.get_many("a", "b", "old", "other") == [b"1", b"2", None, None]
    assert 25 <= kv.ttl("a") <= 30 and 85 <= kv.ttl("b") <= 90


def test_write_with_one_operation_or_none(svc):
    kv = svc.kv
    kv.write({"only": (b"v", 10)})
    assert kv.get("only") == b"v"
    kv.write({}, ["only"])
    assert kv.get("only") is None
    kv.write({}, [])  # nothing to do: no error

"""The suite really runs on the backends it claims: .ci/run's PostgreSQL pass cannot fall
back to SQLite silently."""

from __future__ import annotations

import os

from idp.persistence.kv import MemoryStore, RedisStore


def test_database_and_store_match_the_environment(svc):
    if os.environ.get("IDP_TEST_DATABASE_URL"):
        assert svc.db.engine.dialect.name == "postgresql"
    else:
        assert svc.db.engine.dialect.name == "sqlite"
    if os.environ.get("IDP_TEST_REDIS_URL"):
        assert isinstance(svc.kv, RedisStore)
        svc.kv.set("probe", "1", 5)
        assert svc.kv.get("probe") == b"1"
    else:
        assert isinstance(svc.kv, MemoryStore)

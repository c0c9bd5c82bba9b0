"""Redis through Sentinel: the store talks to the master a real sentinel names."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from idp.persistence.kv import RedisStore, make_store
from tests.conftest import TEST_REDIS

pytestmark = pytest.mark.skipif(not TEST_REDIS or not shutil.which("redis-server"),
                                reason="needs Redis and redis-server")


@pytest.fixture
def sentinel(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    master = urlsplit(TEST_REDIS)
    config = tmp_path / "sentinel.conf"
    config.write_text(f"port {port}\nbind 127.0.0.1\n"
                      f"sentinel monitor idp-test {master.hostname} {master.port} 1\n"
                      "sentinel down-after-milliseconds idp-test 60000\n")
    process = subprocess.Popen(["redis-server", str(config), "--sentinel",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=5)


def test_the_store_uses_the_master_the_sentinel_names(sentinel):
    # The URL's host is a dead address: only the sentinel can lead to Redis.
    url = TEST_REDIS.replace(urlsplit(TEST_REDIS).netloc, "127.0.0.1:1")
    store = make_store(url, "idp-test-sentinel:", [sentinel], "idp-test")
    assert isinstance(store, RedisStore)
    try:
        store.set("k", b"v", 60)
        assert store.get("k") == b"v" and store.ping()
    finally:
        store.flush_prefix("")

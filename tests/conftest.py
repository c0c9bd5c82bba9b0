"""Test fixtures. The suite runs on SQLite + in-process store by default, and on
PostgreSQL + Redis when IDP_TEST_DATABASE_URL / IDP_TEST_REDIS_URL are set (.ci/run
does both passes)."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from sqlalchemy import text

from idp import create_app
from idp.admin.clients import create_client
from idp.config import load_settings
from idp.persistence.db import Database
from idp.persistence.migrate import upgrade
from idp.persistence.models import Base
from tests.support import PASSWORD, Browser, RegisteredClient, make_user

TEST_DB = os.environ.get("IDP_TEST_DATABASE_URL", "")
TEST_REDIS = os.environ.get("IDP_TEST_REDIS_URL", "")
ISSUER = "http://127.0.0.1:5000"


def pytest_report_header(config):
    return [f"database: {TEST_DB or 'sqlite (temporary file)'}",
            f"key-value store: {TEST_REDIS or 'in-process'}"]


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("idp")


# Each pytest run gets its own PostgreSQL schema and Redis key prefix, so that two runs
# on one machine (two developers, CI) cannot trample each other.
RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
REDIS_PREFIX = f"idp-test:{RUN_ID}:"


@pytest.fixture(scope="session")
def database_url(session_dir):
    if TEST_DB:
        schema = f"test_{RUN_ID}"
        admin = Database(TEST_DB)
        with admin.engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        separator = "&" if "?" in TEST_DB else "?"
        url = f"{TEST_DB}{separator}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{session_dir / 'test.sqlite3'}"
    db = Database(url)
    # The suite runs on the schema the migrations build, not on create_all.
    upgrade(db)
    db.dispose()
    yield url
    if TEST_DB:
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _wipe(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


def _wipe_redis() -> None:
    if TEST_REDIS:
        from idp.persistence.kv import RedisStore

        store = RedisStore(TEST_REDIS, REDIS_PREFIX)
        store.flush_prefix("")
        store.client.close()


def merge_settings(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides``, a section (a dict) merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def marked_settings(request, defaults: dict) -> dict:
    """``defaults`` with the test's ``@pytest.mark.settings(...)`` overrides."""
    marker = request.node.get_closest_marker("settings")
    return merge_settings(defaults, marker.kwargs if marker else {})


def fresh(application):
    """Yield ``application`` over an empty database and store (a fixture's body)."""
    _wipe(application.extensions["idp"].db)
    _wipe_redis()
    yield application
    application.extensions["idp"].db.remove()


@pytest.fixture
def make_app(session_dir, database_url):
    apps = []

    def factory(**overrides):
        base = {
            "issuer": ISSUER, "database_url": database_url, "redis_url": TEST_REDIS,
            "redis_prefix": REDIS_PREFIX,
            "secret_key": "test-secret-key-" + "x" * 32, "instance_dir": str(session_dir / "instance"),
            "keys_dir": str(session_dir / "keys"), "testing": True, "auto_migrate": False,
            "passwords": {"argon2_memory_kib": 1024, "argon2_time_cost": 1},
            # Reuse detection at once (the grace period has tests of its own).
            "tokens": {"refresh_token_reuse_grace": 0},
            # Logout propagation runs when a test says so (no thread of its own).
            "session": {"logout_propagation_interval": 0},
            "messaging": {"outbox_dir": str(session_dir / f"outbox-{uuid.uuid4().hex[:8]}")},
        }
        settings = load_settings(merge_settings(base, overrides), environ={})
        app = create_app(settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["idp"].db.dispose()


@pytest.fixture
def app(make_app, database_url):
    application = make_app()
    _wipe(application.extensions["idp"].db)
    _wipe_redis()
    with application.app_context():
        pass
    yield application
    application.extensions["idp"].db.remove()


@pytest.fixture
def svc(app):
    return app.extensions["idp"]


@pytest.fixture
def browser(app):
    return Browser(app.test_client())


@pytest.fixture
def new_browser(app):
    return lambda: Browser(app.test_client())


@pytest.fixture
def user_factory(app, svc):
    return lambda email=None, password=PASSWORD, **fields: make_user(
        app, svc, email, password, **fields)


@pytest.fixture
def user(user_factory):
    return user_factory(email="marie.dupont@example.org")


@pytest.fixture
def client_factory(app, svc):
    def factory(redirect_uri="https://demarche.example.org/callback", **kw):
        kw.setdefault("name", "Démarche test")
        kw.setdefault("scopes", ["openid", "profile", "email", "phone", "address",
                                 "offline_access"])
        with app.app_context():
            client, secret = create_client(svc.db.session, redirect_uris=[redirect_uri], **kw)
            svc.db.session.commit()
            return RegisteredClient(client.client_id, secret, redirect_uri)
    return factory


@pytest.fixture
def rp(client_factory):
    """A confidential first-party relying party (no consent screen)."""
    return client_factory(require_consent=False,
                          post_logout_redirect_uris=["https://demarche.example.org/bye"])


def basic_auth(client: RegisteredClient) -> dict:
    raw = f"{client.client_id}:{client.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

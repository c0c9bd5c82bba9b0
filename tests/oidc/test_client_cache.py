"""The per-worker client cache: changes are seen at once in the process that made them,
within a second in the others (version key in the store)."""

from __future__ import annotations

from idp.oidc.client_cache import VERSION_CHECK_INTERVAL, ClientCache
from idp.persistence.db import Database
from idp.persistence.models import Client


def _server(svc):
    return svc.extras["oidc_server"]


def test_a_committed_change_is_seen_at_once(app, svc, client_factory):
    rp = client_factory()
    with app.app_context():
        server = _server(svc)
        assert server.query_client(rp.client_id).name == "Démarche test"
        row = svc.db.session.get(Client, rp.client_id)
        row.name = "Nouveau nom"
        svc.db.session.commit()
        assert server.query_client(rp.client_id).name == "Nouveau nom"
        svc.db.session.delete(svc.db.session.get(Client, rp.client_id))
        svc.db.session.commit()
        assert server.query_client(rp.client_id) is None


def test_a_client_created_after_a_miss_is_found(app, svc, client_factory):
    with app.app_context():
        assert _server(svc).query_client("not-yet") is None
    rp = client_factory()
    with app.app_context():
        assert _server(svc).query_client(rp.client_id) is not None


def test_what_the_cache_hands_out_is_detached(app, svc, client_factory):
    rp = client_factory()
    with app.app_context():
        client = _server(svc).query_client(rp.client_id)
        assert client not in svc.db.session
        assert client is not svc.db.session.get(Client, rp.client_id)
        svc.db.session.commit()  # nothing of the copy is written
        assert svc.db.session.get(Client, rp.client_id).redirect_uris == [rp.redirect_uri]


def test_another_process_sees_the_change_within_a_second(app, svc, client_factory):
    rp = client_factory()
    now = [1000.0]
    other_db = Database(svc.db.url)  # another worker: its own engine and sessions
    other = ClientCache(other_db, svc.kv, clock=lambda: now[0])
    try:
        assert other.get(other_db.session, rp.client_id).name == "Démarche test"
        with app.app_context():
            svc.db.session.get(Client, rp.client_id).name = "Renommé"
            svc.db.session.commit()
        # Within the second: the other worker still answers from its cache...
        assert other.get(other_db.session, rp.client_id).name == "Démarche test"
        # ...then reads the version key and reloads.
        now[0] += VERSION_CHECK_INTERVAL + 0.01
        assert other.get(other_db.session, rp.client_id).name == "Renommé"
    finally:
        other_db.dispose()

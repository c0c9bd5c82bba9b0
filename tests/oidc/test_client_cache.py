"""The per-process client cache: a plain TTL cache. The process that changes a client
forgets its entry at once; the others see the change when their entry expires."""

from __future__ import annotations

from idp.persistence.client_cache import ClientCache
from idp.persistence.models import Client


def test_an_entry_is_served_until_it_expires_then_reloaded(app, svc, client_factory):
    rp = client_factory()
    now = [1000.0]
    cache = ClientCache(ttl=10, clock=lambda: now[0])
    with app.app_context():
        assert cache.get(svc.db.session, rp.client_id).name == "Démarche test"
        svc.db.session.get(Client, rp.client_id).name = "Renommé"
        svc.db.session.commit()
        assert cache.get(svc.db.session, rp.client_id).name == "Démarche test"
        now[0] += 10.01
        assert cache.get(svc.db.session, rp.client_id).name == "Renommé"


def test_forget_drops_the_entry_at_once(app, svc, client_factory):
    rp = client_factory()
    cache = ClientCache(ttl=60)
    with app.app_context():
        assert cache.get(svc.db.session, rp.client_id) is not None
        svc.db.session.delete(svc.db.session.get(Client, rp.client_id))
        svc.db.session.commit()
        assert cache.get(svc.db.session, rp.client_id) is not None
        cache.forget(rp.client_id)
        assert cache.get(svc.db.session, rp.client_id) is None


def test_an_unknown_client_is_cached_as_unknown_until_it_expires(app, svc, client_factory):
    now = [0.0]
    cache = ClientCache(ttl=5, clock=lambda: now[0])
    with app.app_context():
        assert cache.get(svc.db.session, "later") is None
    rp = client_factory(client_id="later")
    with app.app_context():
        assert cache.get(svc.db.session, rp.client_id) is None
        now[0] += 5.01
        assert cache.get(svc.db.session, rp.client_id) is not None


def test_what_the_cache_hands_out_is_detached(app, svc, client_factory):
    rp = client_factory()
    with app.app_context():
        client = svc.clients.get(svc.db.session, rp.client_id)
        assert client not in svc.db.session
        assert client is not svc.db.session.get(Client, rp.client_id)
        client.name = "changed in the copy"
        svc.db.session.commit()  # nothing of the copy is written
        assert svc.db.session.get(Client, rp.client_id).name == "Démarche test"

"""Flows live in the key-value store and move with the SQL transaction of their step
(idp/persistence/flows.py): written when it commits, undone when it rolls back. Runs on the
in-process store by default and on Redis in CI's second pass."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from idp.persistence.flows import (KEY_PREFIX, FlowError, create_flow, delete_flow, load_flow,
                            read_flow)
from idp.persistence.models import AuditEvent, utcnow
from idp.security.audit import record_event


@pytest.fixture
def writes(svc, monkeypatch):
    """Every batched write the store receives: (keys set, keys deleted)."""
    seen: list[tuple[list[str], list[str]]] = []
    original = svc.kv.write

    def write(sets, deletes=()):
        deletes = list(deletes)
        seen.append((sorted(sets), sorted(deletes)))
        original(sets, deletes)
    monkeypatch.setattr(svc.kv, "write", write)
    return seen


def _stored(app, svc, type_: str, state: str = "start", **kwargs):
    """A flow created and committed in a request of its own."""
    with app.app_context():
        flow = create_flow(svc.db.session, type_, state=state, browser="b", **kwargs)
        svc.db.session.commit()
    return flow


def test_a_new_flow_is_stored_when_the_transaction_commits(app, svc, writes):
    with app.app_context():
        session = svc.db.session
        flow = create_flow(session, "login", state="choose_method", browser="b",
                           return_to="/authorize/resume/x", data={"client_id": "c"}, ttl=600)
        assert read_flow(svc.kv, flow.id) is None and writes == []
        session.commit()
        assert writes == [([KEY_PREFIX + flow.id], [])]
        # A second commit with nothing changed writes nothing.
        session.commit()
        assert len(writes) == 1
    stored = read_flow(svc.kv, flow.id)
    assert (stored.type, stored.state, stored.browser, stored.return_to, stored.data) == (
        "login", "choose_method", "b", "/authorize/resume/x", {"client_id": "c"})
    assert abs(stored.expires_at - flow.expires_at) < dt.timedelta(milliseconds=1)
    assert 590 <= svc.kv.ttl(KEY_PREFIX + flow.id) <= 600


def test_changes_are_written_at_commit_and_loading_twice_gives_one_object(app, svc, writes):
    flow = _stored(app, svc, "recovery", "email")
    with app.app_context():
        session = svc.db.session
        loaded = load_flow(session, flow.id, "recovery", "b")
        assert load_flow(session, flow.id, "recovery", "b") is loaded
        loaded.state = "code"
        loaded.data["destination"] = "email"  # changed in place: seen too
        loaded.expires_at = utcnow() + dt.timedelta(seconds=90)
        assert read_flow(svc.kv, flow.id).state == "email"
        session.commit()
    stored = read_flow(svc.kv, flow.id)
    assert (stored.state, stored.data) == ("code", {"destination": "email"})
    assert stored.updated_at > stored.created_at
    assert 80 <= svc.kv.ttl(KEY_PREFIX + flow.id) <= 90  # the expiry moved the key's TTL


def test_a_rollback_undoes_creation_change_and_deletion(app, svc, writes):
    kept = _stored(app, svc, "login", "choose_method")
    gone = _stored(app, svc, "authorize", "login")
    with app.app_context():
        session = svc.db.session
        changed = load_flow(session, kept.id, "login", "b")
        changed.state = "second_factor"
        changed.user_id = "u1"
        delete_flow(session, load_flow(session, gone.id, "authorize", "b"))
        new = create_flow(session, "registration", state="form", browser="b")
        record_event(session, "login.success", user_id=None, details={})
        session.rollback()
        # As the ORM does for rows: the objects are back to what is stored...
        assert (changed.state, changed.user_id) == ("choose_method", None)
        assert load_flow(session, gone.id, "authorize", "b").state == "login"
        with pytest.raises(FlowError):
            load_flow(session, new.id, "registration", "b")
        # ...and a change after the rollback is written by the next commit.
        changed.state = "second_factor"
        session.commit()
        assert session.scalars(select(AuditEvent)).first() is None
    assert read_flow(svc.kv, kept.id).state == "second_factor"
    assert read_flow(svc.kv, gone.id) is not None
    assert read_flow(svc.kv, new.id) is None
    assert writes[-1] == ([KEY_PREFIX + kept.id], [])


def test_a_deleted_flow_is_gone_at_commit_and_cannot_be_loaded_meanwhile(app, svc, writes):
    first = _stored(app, svc, "authorize", "login")
    second = _stored(app, svc, "login", "choose_method")
    with app.app_context():
        session = svc.db.session
        delete_flow(session, load_flow(session, first.id, "authorize", "b"))
        delete_flow(session, load_flow(session, second.id, "login", "b"))
        with pytest.raises(FlowError):
            load_flow(session, first.id, "authorize", "b")
        assert read_flow(svc.kv, first.id) is not None
        session.commit()
    # Both deletions in one write.
    assert writes[-1] == ([], sorted([KEY_PREFIX + first.id, KEY_PREFIX + second.id]))
    assert read_flow(svc.kv, first.id) is None and read_flow(svc.kv, second.id) is None
    with app.app_context():
        with pytest.raises(FlowError, match="unknown"):
            load_flow(svc.db.session, first.id, "authorize", "b")


def test_a_flow_created_and_deleted_in_one_transaction_costs_no_write(app, svc, writes):
    with app.app_context():
        session = svc.db.session
        flow = create_flow(session, "login", state="choose_method", browser="b")
        delete_flow(session, flow)
        session.commit()
    assert writes == [] and read_flow(svc.kv, flow.id) is None


@pytest.mark.parametrize("flow_id, type_, browser, reason", [
    (None, "login", "b", "missing"),
    ("x" * 65, "login", "b", "missing"),
    ("no-such-flow", "login", "b", "unknown"),
    ("{id}", "authorize", "b", "unknown"),        # another type
    ("{id}", "login", "other", "other browser"),
    ("{id}", "login", None, "other browser"),
])
def test_load_refuses_what_is_not_this_browsers_flow(app, svc, flow_id, type_, browser,
                                                     reason):
    flow = _stored(app, svc, "login")
    with app.app_context():
        wanted = flow_id.format(id=flow.id) if flow_id else None
        with pytest.raises(FlowError, match=reason):
            load_flow(svc.db.session, wanted, type_, browser)


def test_an_expired_flow_is_refused_and_not_written_back(app, svc, writes):
    flow = _stored(app, svc, "login")
    with app.app_context():
        session = svc.db.session
        loaded = load_flow(session, flow.id, "login", "b")
        loaded.expires_at = utcnow() - dt.timedelta(seconds=1)
        loaded.state = "x"
        session.commit()
        assert writes[-1] == ([], [KEY_PREFIX + flow.id])  # nothing to keep: deleted
    with app.app_context():
        with pytest.raises(FlowError):
            load_flow(svc.db.session, flow.id, "login", "b")


def test_a_flow_past_its_expiry_but_still_stored_is_refused(app, svc, monkeypatch):
    flow = _stored(app, svc, "login", ttl=60)
    later = utcnow() + dt.timedelta(seconds=61)
    monkeypatch.setattr("idp.persistence.flows.utcnow", lambda: later)
    with app.app_context():
        with pytest.raises(FlowError, match="expired"):
            load_flow(svc.db.session, flow.id, "login", "b")


def test_an_unreadable_stored_flow_is_unknown(app, svc):
    svc.kv.set(KEY_PREFIX + "broken", b"{not json", ttl=60)
    svc.kv.set(KEY_PREFIX + "partial", b'{"type": "login"}', ttl=60)
    with app.app_context():
        for flow_id in ("broken", "partial"):
            with pytest.raises(FlowError, match="unknown"):
                load_flow(svc.db.session, flow_id, "login", "b")


def test_a_return_address_off_this_site_is_dropped(app, svc):
    with app.app_context():
        for target in ("https://evil.example/", "//evil.example/", "/\\evil", "relative"):
            flow = create_flow(svc.db.session, "login", state="s", browser="b",
                               return_to=target)
            assert flow.return_to is None

"""Rows written by one plain INSERT with the transaction's next statement, their objects
attached as if loaded; and the other writes of the sign-in path that bypass the unit of
work (the SSO session's client list). Each must leave the session and the database
agreeing, and whatever the transaction does next must find the rows, as if they had been
written at once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, func, insert, select, text

from idp.identity import sso as sso_service
from idp.persistence.inserts import execute_with_pending, insert_attached, is_pending
from idp.persistence.models import AuditEvent, SsoSession, User, new_id, utcnow
from idp.security.audit import record_event


def _statements(engine) -> list[str]:
    """The statements sent from now on, each as its first word and the tables it
    inserts into (a WITH carrying pending rows names several)."""
    seen: list[str] = []

    def _seen(_c, _cur, statement, *_a):
        words = statement.split()
        into = [words[i + 1] for i, word in enumerate(words[:-1]) if word.upper() == "INTO"]
        seen.append(" ".join([words[0].upper(), *into]))

    event.listen(engine, "before_cursor_execute", _seen)
    return seen


def _sso(session, user) -> SsoSession:
    now = utcnow()
    return insert_attached(session, SsoSession, id=new_id(), user_id=user.id, auth_time=now,
                           amr=["pwd"], acr="eidas1", clients=[], ip_address=None,
                           user_agent="", created_at=now, last_seen_at=now,
                           reauthenticated_at=now, expires_at=now + dt.timedelta(hours=1))


def _stored_events(svc, *ids: str) -> set[str]:
    with svc.db.transaction() as session:
        return set(session.scalars(select(AuditEvent.id).where(AuditEvent.id.in_(ids))))


def test_a_row_is_written_with_the_next_statement_and_tracks_later_changes(app, svc, user):
    with app.app_context():
        session = svc.db.session
        seen = _statements(svc.db.engine)
        sso = _sso(session, user)
        assert seen == []  # pending: nothing sent yet
        assert sso in session and sso not in session.new and not session.dirty
        assert is_pending(session, sso)
        # Reading every attribute loads nothing.
        assert (sso.amr, sso.acr, sso.clients, sso.user_id) == (["pwd"], "eidas1", [], user.id)
        assert seen == []
        # The next statement finds the row: it was written just before.
        found = session.scalar(select(func.count()).select_from(SsoSession)
                               .where(SsoSession.id == sso.id))
        assert found == 1
        assert seen[0] == "INSERT sso_sessions" and seen[-1].startswith("SELECT")
        assert not is_pending(session, sso)
        # A later change is an ordinary UPDATE at the next flush.
        sso.acr = "eidas2"
        session.commit()
        assert seen[-1] == "UPDATE"
        sso_id = sso.id
    with app.app_context():
        stored = svc.db.session.get(SsoSession, sso_id)
        assert stored.acr == "eidas2"
        assert stored.created_at <= utcnow() < stored.expires_at


def test_a_bulk_update_of_the_transaction_reaches_a_pending_row(app, svc, user):
    # "Sign out everywhere" run after a sign-in in the same transaction must end the new
    # session too: the UPDATE is sent after the pending row.
    with app.app_context():
        session = svc.db.session
        sso = _sso(session, user)
        assert sso_service.end_all_for_user(session, user.id, "password_changed") == 1
        session.commit()
        sso_id = sso.id
    with svc.db.transaction() as session:
        assert session.get(SsoSession, sso_id).ended_reason == "password_changed"


def test_the_pending_rows_of_a_commit_go_in_one_statement_on_postgresql(app, svc, user):
    with app.app_context():
        session = svc.db.session
        seen = _statements(svc.db.engine)
        first = record_event(session, "login.success", user_id=user.id, details={"k": "v"})
        sso = _sso(session, user)
        second = record_event(session, "logout", user_id=user.id)
        session.commit()
        writes = [s for s in seen if s.split()[0] in ("INSERT", "WITH")]
        if svc.db.is_sqlite:
            assert writes == ["INSERT audit_events", "INSERT sso_sessions",
                              "INSERT audit_events"]
        else:
            assert writes == ["WITH audit_events sso_sessions audit_events"]
        ids = (first.id, second.id)
        sso_id = sso.id
    assert _stored_events(svc, *ids) == set(ids)
    with svc.db.transaction() as session:
        stored = session.get(AuditEvent, ids[0])
        assert (stored.type, stored.user_id, stored.details) == ("login.success", user.id,
                                                                 {"k": "v"})
        assert session.get(SsoSession, sso_id).amr == ["pwd"]


def test_a_statement_carries_the_pending_rows(app, svc, user):
    with app.app_context():
        session = svc.db.session
        seen = _statements(svc.db.engine)
        event_ = record_event(session, "login.success", user_id=user.id)
        sso = _sso(session, user)
        sso_service.add_client(session, sso, "client-a")  # pending: written with the row
        execute_with_pending(session, insert(AuditEvent.__table__), {
            "id": (carried_by := new_id()), "created_at": utcnow(), "type": "token.issued",
            "outcome": "success", "details": {}})
        writes = [s for s in seen if s.split()[0] in ("INSERT", "WITH", "UPDATE")]
        if svc.db.is_sqlite:
            assert writes == ["INSERT audit_events", "INSERT sso_sessions",
                              "INSERT audit_events"]
        else:
            assert writes == ["WITH audit_events sso_sessions audit_events"]
        assert not is_pending(session, sso) and sso.clients == ["client-a"]
        session.commit()
        ids = (event_.id, carried_by)
        sso_id = sso.id
    assert _stored_events(svc, *ids) == set(ids)
    with svc.db.transaction() as session:
        assert session.get(SsoSession, sso_id).clients == ["client-a"]


def test_pending_rows_are_written_before_a_flush(app, svc, user_factory):
    with app.app_context():
        session = svc.db.session
        seen = _statements(svc.db.engine)
        event_ = record_event(session, "account.created")
        session.add(User(email="flushed@example.org", password_hash="x", given_name="",
                         family_name="", population="usager", mfa_credentials=[]))
        session.flush()
        assert seen[:2] == ["INSERT audit_events", "INSERT users"]
        session.commit()
        event_id = event_.id
    assert _stored_events(svc, event_id) == {event_id}


@pytest.mark.parametrize("end", ["rollback", "close"])
def test_pending_rows_go_with_a_transaction_that_does_not_commit(app, svc, end):
    with app.app_context():
        session = svc.db.session
        dropped = record_event(session, "login.success", details={"k": "v"}).id
        getattr(session, end)()
        kept = record_event(session, "logout").id
        session.commit()
        ids = (dropped, kept)
    assert _stored_events(svc, *ids) == {ids[1]}


def test_a_savepoint_keeps_what_was_pending_before_it(app, svc):
    with app.app_context():
        session = svc.db.session
        before = record_event(session, "login.success").id
        savepoint = session.begin_nested()
        inside = record_event(session, "logout").id
        savepoint.rollback()
        session.commit()
        ids = (before, inside)
    assert _stored_events(svc, *ids) == {ids[0]}


def test_a_raw_read_on_the_session_sees_a_pending_row(app, svc):
    with app.app_context():
        session = svc.db.session
        event_ = record_event(session, "login.success")
        assert session.execute(text("SELECT count(*) FROM audit_events WHERE id = :id"),
                               {"id": event_.id}).scalar() == 1
        session.rollback()


def test_insert_attached_wants_every_defaulted_column(app, svc):
    with app.app_context():
        with pytest.raises(ValueError, match="created_at"):
            insert_attached(svc.db.session, AuditEvent, id=new_id(), type="x", outcome="success",
                            details={})


def test_add_client_updates_a_stored_row_and_keeps_the_object_clean(app, svc, user):
    with app.app_context():
        session = svc.db.session
        sso = sso_service.start(session, user, amr=["pwd"], acr="eidas1", lifetime=3600,
                                ip_address=None, user_agent=None)
        session.commit()
        seen = _statements(svc.db.engine)
        sso_service.add_client(session, sso, "client-a")
        sso_service.add_client(session, sso, "client-a")  # already there: nothing written
        assert seen == ["UPDATE"]
        assert sso.clients == ["client-a"] and sso not in session.dirty
        sso_service.add_client(session, sso, "client-b")
        session.commit()
        sso_id = sso.id
    with app.app_context():
        stored = svc.db.session.get(SsoSession, sso_id)
        assert stored.clients == ["client-a", "client-b"]
        assert stored.expires_at - stored.created_at == dt.timedelta(seconds=3600)

"""Rows written by one plain INSERT, their objects attached as if loaded; and the other
writes of the sign-in path that bypass the unit of work (the SSO session's client
list). Each must leave the session and the database agreeing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select

from idp.identity import sso as sso_service
from idp.persistence.inserts import insert_attached
from idp.persistence.models import AuditEvent, SsoSession, new_id, utcnow
from idp.security.audit import record_event


def _statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: seen.append(statement.split()[0].upper()))
    return seen


def test_insert_attached_writes_at_once_and_tracks_later_changes(app, svc, user):
    with app.app_context():
        session = svc.db.session
        seen = _statements(svc.db.engine)
        now = utcnow()
        sso = insert_attached(session, SsoSession, id=new_id(), user_id=user.id, auth_time=now,
                              amr=["pwd"], acr="eidas1", clients=[], ip_address=None,
                              user_agent="", created_at=now, last_seen_at=now,
                              reauthenticated_at=now, expires_at=now + dt.timedelta(hours=1))
        assert seen == ["INSERT"]  # written now, not at the next flush
        assert sso in session and sso not in session.new and not session.dirty
        # Reading every attribute loads nothing.
        assert (sso.amr, sso.acr, sso.clients, sso.user_id) == (["pwd"], "eidas1", [], user.id)
        assert seen == ["INSERT"]
        # A later change is an ordinary UPDATE at the next flush.
        sso.acr = "eidas2"
        session.commit()
        assert seen[-1] == "UPDATE"
        sso_id = sso.id
    with app.app_context():
        stored = svc.db.session.get(SsoSession, sso_id)
        assert stored.acr == "eidas2"
        assert stored.created_at <= utcnow() < stored.expires_at


def test_insert_attached_rolls_back_with_its_transaction(app, svc):
    with app.app_context():
        session = svc.db.session
        item = record_event(session, "login.success", user_id=None, details={"k": "v"})
        event_id = item.id
        session.rollback()
        assert session.scalar(select(AuditEvent).where(AuditEvent.id == event_id)) is None


def test_insert_attached_wants_every_defaulted_column(app, svc):
    with app.app_context():
        with pytest.raises(ValueError, match="created_at"):
            insert_attached(svc.db.session, AuditEvent, id=new_id(), type="x", outcome="success",
                            details={})


def test_add_client_updates_the_row_and_keeps_the_object_clean(app, svc, user):
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

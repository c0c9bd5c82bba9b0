"""Rows written by one plain INSERT, their objects attached as if loaded; and the other
writes of the sign-in path that bypass the unit of work (flow deletion, the SSO session's
client list). Each must leave the session and the database agreeing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select

from idp.flows.base import create_flow, delete_flow, load_flow
from idp.identity import sso as sso_service
from idp.persistence.inserts import insert_attached
from idp.persistence.models import AuditEvent, Flow, SsoSession, new_id, utcnow
from idp.security.audit import record_event


def _statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: seen.append(statement.split()[0].upper()))
    return seen


def test_insert_attached_writes_at_once_and_tracks_later_changes(app, svc):
    with app.app_context():
        session = svc.db.session
        seen = _statements(svc.db.engine)
        flow = create_flow(session, "login", state="choose_method", browser="b",
                           data={"client_id": "x"})
        assert seen == ["INSERT"]  # written now, not at the next flush
        assert flow in session and flow not in session.new and not session.dirty
        # Reading every attribute loads nothing.
        assert (flow.type, flow.state, flow.data, flow.user_id) == ("login", "choose_method",
                                                                    {"client_id": "x"}, None)
        assert seen == ["INSERT"]
        # A later change is an ordinary UPDATE at the next flush.
        flow.state = "second_factor"
        session.commit()
        assert seen[-1] == "UPDATE"
        flow_id = flow.id
    with app.app_context():
        stored = svc.db.session.get(Flow, flow_id)
        assert stored.state == "second_factor"
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


def test_delete_flow_deletes_the_row_and_forgets_the_object(app, svc):
    with app.app_context():
        session = svc.db.session
        flow = create_flow(session, "authorize", state="login", browser="b")
        session.commit()
        delete_flow(session, flow)
        assert flow not in session
        session.commit()
        flow_id = flow.id
    with app.app_context():
        assert svc.db.session.get(Flow, flow_id) is None
        from idp.flows.base import FlowError
        with pytest.raises(FlowError):
            load_flow(svc.db.session, flow_id, "authorize", "b")


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

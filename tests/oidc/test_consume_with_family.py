"""Consuming a code or refresh token together with its token family and user: one
statement on PostgreSQL (a data-modifying CTE), two on SQLite; the same answers on both
(the suite runs on both)."""

from __future__ import annotations

from sqlalchemy import update

from idp.oidc.tokens import consume_with_live_family
from idp.persistence import consumables
from idp.persistence.consumables import Outcome
from idp.persistence.models import Grant, User, new_id, utcnow


def _token_in_a_new_family(session, user_id: str, client_id: str) -> tuple[str, str]:
    grant = Grant(id=new_id(), user_id=user_id, client_id=client_id, scope="openid")
    session.add(grant)
    value = consumables.issue_bearer(session, "refresh_token", 600, user_id=user_id,
                                     client_id=client_id, grant_id=grant.id)
    session.commit()
    return grant.id, value


def test_a_live_family_comes_back_with_its_user(app, svc, user, rp):
    with app.app_context():
        session = svc.db.session
        grant_id, value = _token_in_a_new_family(session, user.id, rp.client_id)
        result, family = consume_with_live_family(session, "refresh_token", value)
        assert result.ok and result.item.grant_id == grant_id
        assert result.item.client_id == rp.client_id
        grant, found_user = family
        assert (grant.id, found_user.id) == (grant_id, user.id)
        session.commit()
        # Consumed: the second use is a replay, with no family.
        again, family = consume_with_live_family(session, "refresh_token", value)
        assert again.outcome is Outcome.REPLAYED and family is None
        session.rollback()


def test_a_dead_family_still_consumes_the_token(app, svc, user, rp, user_factory):
    with app.app_context():
        session = svc.db.session
        revoked_id, revoked_value = _token_in_a_new_family(session, user.id, rp.client_id)
        session.execute(update(Grant).where(Grant.id == revoked_id).values(revoked_at=utcnow()))
        other = user_factory(email="disabled.user@example.org")
        _, disabled_value = _token_in_a_new_family(session, other.id, rp.client_id)
        session.execute(update(User).where(User.id == other.id).values(disabled=True))
        session.commit()
        for value in (revoked_value, disabled_value):
            result, family = consume_with_live_family(session, "refresh_token", value)
            assert result.ok and family is None
        session.commit()
        for value in (revoked_value, disabled_value):
            assert consumables.consume_bearer(
                session, "refresh_token", value).outcome is Outcome.REPLAYED
        session.rollback()


def test_unknown_and_expired_values_consume_nothing(app, svc, user, rp):
    with app.app_context():
        session = svc.db.session
        expired = consumables.issue_bearer(session, "refresh_token", -1, user_id=user.id,
                                           client_id=rp.client_id)
        session.commit()
        for value, outcome in (("nope", Outcome.UNKNOWN), (expired, Outcome.EXPIRED),
                               ("x" * 600, Outcome.UNKNOWN), (None, Outcome.UNKNOWN)):
            result, family = consume_with_live_family(session, "refresh_token", value)
            assert (result.outcome, family) == (outcome, None)
        session.rollback()

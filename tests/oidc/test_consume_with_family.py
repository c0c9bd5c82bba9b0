"""Consuming a code or refresh token together with its token family and user: one
statement on PostgreSQL (a data-modifying CTE), two on SQLite; the same answers on both
(the suite runs on both). Then the refresh token's rotation in one statement, on
PostgreSQL only."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, update
from sqlalchemy import inspect as sa_inspect

from idp.oidc.tokens import consume_with_live_family, rotate_refresh_token
from idp.persistence import consumables
from idp.persistence.consumables import Outcome
from idp.persistence.models import Consumable, Grant, User, new_id, utcnow


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


# -- the one-statement rotation (PostgreSQL) -------------------------------------------

ABSOLUTE_TTL, IDLE_TTL = 30 * 24 * 3600, 14 * 24 * 3600


def _rotate(svc, value, client_id, scopes=(), absolute_ttl=ABSOLUTE_TTL):
    with svc.db.single_statement() as connection:
        return rotate_refresh_token(connection, "refresh_token", value, client_id=client_id,
                                    scopes=list(scopes), absolute_ttl=absolute_ttl,
                                    idle_ttl=IDLE_TTL)


def _consumable_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Consumable))


@pytest.fixture
def postgres_only(svc):
    if svc.db.is_sqlite:
        pytest.skip("the one-statement rotation is PostgreSQL's (SQLite takes the general path)")


def test_a_rotation_consumes_the_token_and_stores_its_successor(app, svc, user, rp,
                                                                postgres_only):
    with app.app_context():
        session = svc.db.session
        grant_id, value = _token_in_a_new_family(session, user.id, rp.client_id)
        before = _consumable_count(session)
        rotation = _rotate(svc, value, rp.client_id, scopes=["openid"])
        assert (rotation.grant.id, rotation.user.id) == (grant_id, user.id)
        assert rotation.successor != value
        assert _consumable_count(session) == before + 1
        successor = consumables.find_bearer(session, "refresh_token", rotation.successor)
        assert (successor.user_id, successor.client_id, successor.grant_id) == (
            user.id, rp.client_id, grant_id)
        assert successor.consumed_at is None and successor.data == {}
        lifetime = (successor.expires_at - utcnow()).total_seconds()
        assert IDLE_TTL - 60 < lifetime <= IDLE_TTL  # the idle limit comes first here
        # The old token is spent; the successor rotates in turn.
        assert consumables.consume_bearer(
            session, "refresh_token", value).outcome is Outcome.REPLAYED
        session.rollback()
        assert _rotate(svc, value, rp.client_id) is None
        assert _rotate(svc, rotation.successor, rp.client_id) is not None


def test_a_successor_never_outlives_its_family(app, svc, user, rp, postgres_only):
    with app.app_context():
        session = svc.db.session
        grant_id, value = _token_in_a_new_family(session, user.id, rp.client_id)
        created = session.get(Grant, grant_id).created_at
        rotation = _rotate(svc, value, rp.client_id, absolute_ttl=3600)
        successor = consumables.find_bearer(session, "refresh_token", rotation.successor)
        assert abs((successor.expires_at - created).total_seconds() - 3600) < 1
        session.rollback()


def test_a_rotation_changes_nothing_unless_every_check_passes(app, svc, user, rp,
                                                              client_factory, user_factory,
                                                              postgres_only):
    with app.app_context():
        session = svc.db.session
        other_client = client_factory(require_consent=False)
        _, wrong_client = _token_in_a_new_family(session, user.id, rp.client_id)
        _, widened = _token_in_a_new_family(session, user.id, rp.client_id)
        revoked_id, revoked = _token_in_a_new_family(session, user.id, rp.client_id)
        session.execute(update(Grant).where(Grant.id == revoked_id).values(revoked_at=utcnow()))
        other = user_factory(email="disabled.rotation@example.org")
        _, disabled = _token_in_a_new_family(session, other.id, rp.client_id)
        session.execute(update(User).where(User.id == other.id).values(disabled=True))
        old_id, too_old = _token_in_a_new_family(session, user.id, rp.client_id)
        session.execute(update(Grant).where(Grant.id == old_id).values(
            created_at=utcnow() - dt.timedelta(seconds=ABSOLUTE_TTL)))
        expired = consumables.issue_bearer(session, "refresh_token", -1, user_id=user.id,
                                           client_id=rp.client_id, grant_id=old_id)
        session.commit()
        before = _consumable_count(session)
        cases = [(wrong_client, other_client.client_id, ()), (widened, rp.client_id, ["phone"]),
                 (revoked, rp.client_id, ()), (disabled, rp.client_id, ()),
                 (too_old, rp.client_id, ()), (expired, rp.client_id, ()),
                 ("unknown", rp.client_id, ()), ("x" * 600, rp.client_id, ()),
                 (None, rp.client_id, ())]
        for value, client_id, scopes in cases:
            assert _rotate(svc, value, client_id, scopes) is None, value
        assert _consumable_count(session) == before
        # Nothing was consumed: the general path gives each case its own answer.
        for value in (wrong_client, widened, revoked, disabled, too_old):
            assert consumables.consume_bearer(
                session, "refresh_token", value).outcome is Outcome.OK
        session.rollback()


def test_two_rotations_of_one_token_at_once_one_wins(app, svc, user, rp, postgres_only):
    with app.app_context():
        _, value = _token_in_a_new_family(svc.db.session, user.id, rp.client_id)
        start = threading.Barrier(4)

        def attempt(_):
            start.wait()
            return _rotate(svc, value, rp.client_id)

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(attempt, range(4)))
        assert sum(result is not None for result in results) == 1


def test_a_rotation_reads_the_family_and_user_as_the_models_do(app, svc, user, rp,
                                                               postgres_only):
    # The rotation reads plain rows, not ORM objects: every column the models map, and
    # the user's display name, must read the same (the ID token's claims come from them).
    with app.app_context():
        session = svc.db.session
        grant_id, value = _token_in_a_new_family(session, user.id, rp.client_id)
        rotation = _rotate(svc, value, rp.client_id)
        grant, found_user = session.get(Grant, grant_id), session.get(User, user.id)
        for model, view in ((grant, rotation.grant), (found_user, rotation.user)):
            for attr in sa_inspect(type(model)).column_attrs:
                assert getattr(view, attr.key) == getattr(model, attr.key), attr.key
        assert rotation.user.name == found_user.name and found_user.name
        session.rollback()

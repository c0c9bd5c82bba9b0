"""Consuming a code or refresh token together with its token family and user: one
statement on PostgreSQL (a data-modifying CTE), two on SQLite; the same answers on both
(the suite runs on both). Then the refresh token's rotation and the code's exchange in one
statement each, on PostgreSQL only."""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from authlib.oauth2.rfc7636.challenge import create_s256_code_challenge
from sqlalchemy import func, select, update
from sqlalchemy import inspect as sa_inspect

from idp.oidc.tokens import consume_with_live_family, exchange_code, rotate_refresh_token
from idp.persistence import consumables
from idp.persistence.consumables import Outcome
from idp.persistence.models import AuditEvent, Consumable, Grant, User, new_id, utcnow


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


def _winners_of_four_at_once(attempt) -> int:
    """How many of four threads calling ``attempt`` at the same moment got a result."""
    start = threading.Barrier(4)

    def one(_):
        start.wait()
        return attempt()

    with ThreadPoolExecutor(4) as pool:
        return sum(result is not None for result in pool.map(one, range(4)))


def test_two_rotations_of_one_token_at_once_one_wins(app, svc, user, rp, postgres_only):
    with app.app_context():
        _, value = _token_in_a_new_family(svc.db.session, user.id, rp.client_id)
        assert _winners_of_four_at_once(lambda: _rotate(svc, value, rp.client_id)) == 1


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


# -- the one-statement code exchange (PostgreSQL) --------------------------------------

REDIRECT_URI = "https://demarche.example.org/callback"
CHALLENGE = create_s256_code_challenge("v" * 43)


def _code_in_a_new_family(session, user_id: str, client_id: str, *, scope="openid",
                          ttl=60, **data) -> tuple[str, str]:
    grant = Grant(id=new_id(), user_id=user_id, client_id=client_id, scope=scope,
                  auth_time=int(time.time()))
    session.add(grant)
    stored = {"redirect_uri": REDIRECT_URI, "scope": scope, "nonce": "n-1",
              "code_challenge": CHALLENGE, "code_challenge_method": "S256",
              "auth_time": grant.auth_time, **data}
    value = consumables.issue_bearer(session, "authorization_code", ttl, user_id=user_id,
                                     client_id=client_id, grant_id=grant.id, data=stored)
    session.commit()
    return grant.id, value


def _exchange(svc, value, client_id, *, redirect_uri=REDIRECT_URI, challenge=CHALLENGE,
              with_refresh=True, absolute_ttl=ABSOLUTE_TTL):
    with svc.db.single_statement() as connection:
        return exchange_code(connection, "authorization_code", value, client_id=client_id,
                             redirect_uri=redirect_uri, code_challenge=challenge,
                             with_refresh=with_refresh, absolute_ttl=absolute_ttl,
                             idle_ttl=IDLE_TTL)


def _events(session, type_="token.issued") -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.type == type_)))


def test_an_exchange_consumes_the_code_and_stores_its_refresh_token_and_audit_row(
        app, svc, user, rp, postgres_only):
    with app.app_context():
        session = svc.db.session
        grant_id, value = _code_in_a_new_family(session, user.id, rp.client_id,
                                                scope="openid email offline_access")
        before = _consumable_count(session)
        exchange = _exchange(svc, value, rp.client_id)
        assert (exchange.grant.id, exchange.user.id) == (grant_id, user.id)
        assert exchange.data["nonce"] == "n-1" and exchange.data["redirect_uri"] == REDIRECT_URI
        grant, found_user = session.get(Grant, grant_id), session.get(User, user.id)
        for model, view in ((grant, exchange.grant), (found_user, exchange.user)):
            for attr in sa_inspect(type(model)).column_attrs:
                assert getattr(view, attr.key) == getattr(model, attr.key), attr.key
        assert _consumable_count(session) == before + 1
        refresh = consumables.find_bearer(session, "refresh_token", exchange.refresh_token)
        assert (refresh.kind, refresh.user_id, refresh.client_id, refresh.grant_id) == (
            "refresh_token", user.id, rp.client_id, grant_id)
        assert refresh.consumed_at is None and refresh.data == {} and refresh.attempts == 0
        lifetime = (refresh.expires_at - utcnow()).total_seconds()
        assert IDLE_TTL - 60 < lifetime <= IDLE_TTL
        # The audit row is the one record_event writes on the general path.
        [event] = _events(session)
        assert (event.user_id, event.client_id, event.outcome, event.details) == (
            user.id, rp.client_id, "success", {"grant_type": "authorization_code"})
        assert event.ip_address is None and abs((event.created_at - utcnow()).total_seconds()) < 60
        # The code is spent: the second exchange finds nothing, the general path a replay.
        assert _exchange(svc, value, rp.client_id) is None
        assert consumables.consume_bearer(
            session, "authorization_code", value).outcome is Outcome.REPLAYED
        session.rollback()
        assert len(_events(session)) == 1


def test_an_exchange_stores_a_refresh_token_only_for_offline_access_and_a_refreshing_client(
        app, svc, user, rp, postgres_only):
    with app.app_context():
        session = svc.db.session
        _, without_offline = _code_in_a_new_family(session, user.id, rp.client_id,
                                                   scope="openid email")
        _, client_cannot = _code_in_a_new_family(session, user.id, rp.client_id,
                                                 scope="openid offline_access")
        before = _consumable_count(session)
        for value, with_refresh in ((without_offline, True), (client_cannot, False)):
            exchange = _exchange(svc, value, rp.client_id, with_refresh=with_refresh)
            assert exchange is not None and exchange.refresh_token is None
        assert _consumable_count(session) == before
        assert len(_events(session)) == 2


def test_an_exchange_changes_nothing_unless_every_check_passes(
        app, svc, user, rp, client_factory, user_factory, postgres_only):
    with app.app_context():
        session = svc.db.session
        other_client = client_factory(require_consent=False)
        codes = {name: _code_in_a_new_family(session, user.id, rp.client_id)[1]
                 for name in ("wrong client", "wrong redirect", "wrong challenge")}
        codes["plain method"] = _code_in_a_new_family(
            session, user.id, rp.client_id, code_challenge_method="plain")[1]
        codes["no challenge"] = _code_in_a_new_family(
            session, user.id, rp.client_id, code_challenge=None)[1]
        revoked_id, codes["revoked family"] = _code_in_a_new_family(session, user.id,
                                                                    rp.client_id)
        session.execute(update(Grant).where(Grant.id == revoked_id).values(revoked_at=utcnow()))
        other = user_factory(email="disabled.exchange@example.org")
        codes["disabled user"] = _code_in_a_new_family(session, other.id, rp.client_id)[1]
        session.execute(update(User).where(User.id == other.id).values(disabled=True))
        _, expired = _code_in_a_new_family(session, user.id, rp.client_id, ttl=-1)
        _, spent = _code_in_a_new_family(session, user.id, rp.client_id)
        assert consumables.consume_bearer(session, "authorization_code", spent).ok
        session.commit()
        before = _consumable_count(session)
        attempts = [
            (codes["wrong client"], {"client_id": other_client.client_id}),
            (codes["wrong redirect"], {"redirect_uri": REDIRECT_URI + "/other"}),
            (codes["wrong challenge"], {"challenge": create_s256_code_challenge("w" * 43)}),
            *((codes[name], {}) for name in ("plain method", "no challenge", "revoked family",
                                             "disabled user")),
            (expired, {}), (spent, {}), ("unknown", {}), ("x" * 600, {}), (None, {})]
        for value, changed in attempts:
            arguments = {"client_id": rp.client_id, **changed}
            assert _exchange(svc, value, arguments.pop("client_id"), **arguments) is None, value
        assert _consumable_count(session) == before and _events(session) == []
        # Nothing was consumed: the general path gives each case its own answer.
        for value in codes.values():
            assert consumables.consume_bearer(
                session, "authorization_code", value).outcome is Outcome.OK
        session.rollback()


def test_two_exchanges_of_one_code_at_once_one_wins(app, svc, user, rp, postgres_only):
    with app.app_context():
        session = svc.db.session
        _, value = _code_in_a_new_family(session, user.id, rp.client_id,
                                         scope="openid offline_access")
        before = _consumable_count(session)
        assert _winners_of_four_at_once(lambda: _exchange(svc, value, rp.client_id)) == 1
        assert _consumable_count(session) == before + 1 and len(_events(session)) == 1

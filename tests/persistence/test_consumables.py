"""Single-use artefacts: atomic consumption, bounded attempts, replay diagnosis."""

from __future__ import annotations

import datetime as dt
import threading

from idp.persistence import consumables
from idp.persistence.consumables import Outcome
from idp.persistence.models import User, new_id, utcnow

KEY = "k" * 32


def test_bearer_is_consumed_once_even_concurrently(app, svc):
    with app.app_context():
        value = consumables.issue_bearer(svc.db.session, "email_link", 600)
        svc.db.session.commit()
    results = []

    def consume():
        with svc.db.transaction() as session:
            results.append(consumables.consume_bearer(session, "email_link", value).outcome)

    threads = [threading.Thread(target=consume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(Outcome.OK) == 1
    assert set(results) <= {Outcome.OK, Outcome.REPLAYED}


def test_bearer_outcomes(app, svc):
    with app.app_context():
        session = svc.db.session
        value = consumables.issue_bearer(session, "email_link", 600)
        expired = consumables.issue_bearer(session, "email_link", -1)
        session.commit()
        assert consumables.consume_bearer(session, "other_kind", value).outcome is Outcome.UNKNOWN
        assert consumables.consume_bearer(session, "email_link", expired).outcome is Outcome.EXPIRED
        assert consumables.consume_bearer(session, "email_link", "nope").outcome is Outcome.UNKNOWN
        assert consumables.consume_bearer(session, "email_link", value).ok
        assert consumables.consume_bearer(session, "email_link", value).outcome is Outcome.REPLAYED


def test_consumed_bearer_returns_its_row_and_refreshes_a_loaded_copy(app, svc):
    with app.app_context():
        session = svc.db.session
        value = consumables.issue_bearer(session, "email_link", 600, user_id=None,
                                         client_id="a-client", data={"k": "v"})
        session.commit()
        loaded = consumables.find_bearer(session, "email_link", value)
        assert loaded.consumed_at is None
        result = consumables.consume_bearer(session, "email_link", value)
        assert result.ok
        assert (result.item.client_id, result.item.data) == ("a-client", {"k": "v"})
        assert result.item.consumed_at is not None
        # The copy already in the session sees the consumption before any commit.
        assert loaded.consumed_at is not None
        session.rollback()


def test_issuing_a_bearer_first_writes_the_account_it_belongs_to(app, svc):
    """The token's row refers to its user: a user still pending in the session (a new
    account's confirmation link) must reach the database before the token does."""
    with app.app_context():
        session = svc.db.session
        user = User(id=new_id(), email="pending.user@example.org")
        session.add(user)
        value = consumables.issue_bearer(session, "email_link", 600, user_id=user.id)
        session.commit()
        assert consumables.find_bearer(session, "email_link", value).user_id == user.id


def test_code_attempts_are_bounded_and_survive_a_resend(app, svc):
    with app.app_context():
        session = svc.db.session
        consumables.issue_code(session, "verify", "user-1:phone", "123456", 600, KEY)
        session.commit()
        for left in (4, 3):
            result = consumables.verify_code(session, "verify", "user-1:phone", "000000", KEY, 5)
            assert result.outcome is Outcome.WRONG_CODE and result.attempts_left == left
        # A new code voids the old one but keeps its failures.
        consumables.issue_code(session, "verify", "user-1:phone", "654321", 600, KEY)
        session.commit()
        assert consumables.verify_code(session, "verify", "user-1:phone", "123456", KEY, 5).outcome \
            is Outcome.WRONG_CODE
        assert consumables.verify_code(session, "verify", "user-1:phone", "000000", KEY, 5).outcome \
            is Outcome.WRONG_CODE
        last = consumables.verify_code(session, "verify", "user-1:phone", "000000", KEY, 5)
        assert last.outcome is Outcome.TOO_MANY_ATTEMPTS
        # Even the right code is refused now.
        assert consumables.verify_code(session, "verify", "user-1:phone", "654321", KEY, 5).outcome \
            is Outcome.TOO_MANY_ATTEMPTS


def test_code_is_bound_to_its_lookup_and_single_use(app, svc):
    with app.app_context():
        session = svc.db.session
        consumables.issue_code(session, "verify", "user-1:email:a@example.org", "111111", 600, KEY)
        session.commit()
        assert consumables.verify_code(session, "verify", "user-1:email:b@example.org", "111111",
                                       KEY, 5).outcome is Outcome.UNKNOWN
        assert consumables.verify_code(session, "verify", "user-1:email:a@example.org", "111111",
                                       KEY, 5).ok
        assert consumables.verify_code(session, "verify", "user-1:email:a@example.org", "111111",
                                       KEY, 5).outcome is Outcome.REPLAYED


def test_parallel_guesses_never_exceed_the_limit(app, svc):
    with app.app_context():
        consumables.issue_code(svc.db.session, "verify", "user-2", "424242", 600, KEY)
        svc.db.session.commit()
    outcomes = []

    def guess(n):
        with svc.db.transaction() as session:
            outcomes.append(consumables.verify_code(session, "verify", "user-2", f"{n:06d}", KEY, 5).outcome)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(o in (Outcome.WRONG_CODE,) for o in outcomes) <= 5
    assert outcomes.count(Outcome.TOO_MANY_ATTEMPTS) >= 15

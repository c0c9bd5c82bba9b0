"""argon2id hashing: parameters from the configuration, upgraded at the next login."""

from __future__ import annotations

from argon2 import extract_parameters
from sqlalchemy import select

from idp.persistence.models import User


def test_default_parameters_meet_owasp_minimum(make_app):
    app = make_app(passwords={"argon2_memory_kib": 19456, "argon2_time_cost": 2})
    hasher = app.extensions["idp"].passwords
    params = extract_parameters(hasher.hash("un mot de passe"))
    assert params.type.name == "ID" and params.memory_cost >= 19 * 1024 and params.time_cost >= 2


def test_old_hashes_are_upgraded_at_next_successful_login(app, user, make_app):
    stronger = make_app(passwords={"argon2_memory_kib": 8192, "argon2_time_cost": 2})
    svc = stronger.extensions["idp"]
    from tests.support import Browser

    browser = Browser(stronger.test_client())
    wrong = browser.login(user.email, "wrong password entirely")
    assert wrong.status_code == 400
    with stronger.app_context():
        before = svc.db.session.scalar(select(User.password_hash).where(User.id == user.id))
    assert extract_parameters(before).memory_cost == 1024  # untouched by a failed login
    assert browser.login(user.email).status_code == 302
    with stronger.app_context():
        after = svc.db.session.scalar(select(User.password_hash).where(User.id == user.id))
    assert extract_parameters(after).memory_cost == 8192 and after != before
    assert svc.passwords.verify(after, "correct horse battery staple")

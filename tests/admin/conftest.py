"""Fixtures of the console tests: an administrator with an authenticator, signed in."""

from __future__ import annotations

import pytest

from tests.support import enrol_totp, sign_in_with_totp


@pytest.fixture
def terms(svc):
    return svc.settings.registration.terms_version


@pytest.fixture
def admin(user_factory, terms):
    return user_factory(email="admin@region.example", is_admin=True, terms_version=terms)


@pytest.fixture
def admin_totp(app, svc, admin):
    """The administrator's authenticator."""
    return enrol_totp(app, svc, admin)


@pytest.fixture
def citizen(user_factory, terms):
    return user_factory(email="marie.dupont@example.org", terms_version=terms)


@pytest.fixture
def console(app, svc, browser, admin, admin_totp):
    """The browser of an administrator who has just signed in with the password and the
    second factor."""
    assert sign_in_with_totp(browser, app, svc, admin, admin_totp).status_code == 302
    return browser

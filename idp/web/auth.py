"""Who is signed in on this browser.

Flask-Login keeps, as its "user id", the id of the SSO session row: ending that row
(logout anywhere, password reset, "sign out this device") signs the browser out on its
next request.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Callable

from flask import g, redirect, request, session, url_for
from flask_login import LoginManager, current_user, login_user, logout_user

from ..identity import sso as sso_service
from ..persistence.models import SsoSession, User, utcnow
from ..services import client_ip, services, user_agent

login_manager = LoginManager()
login_manager.login_view = "login.start"
login_manager.login_message = None


class SessionUser:
    """What Flask-Login sees: the user seen through one SSO session."""

    def __init__(self, user: User, sso: SsoSession) -> None:
        self.user = user
        self.sso = sso

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.sso.id

    def __getattr__(self, name):
        return getattr(self.user, name)


@login_manager.user_loader
def _load(sso_id: str) -> SessionUser | None:
    svc = services()
    db = svc.db.session
    found = sso_service.load_active(db, sso_id, svc.settings.session.idle_timeout)
    # load_active may slide last_seen_at or mark the row ended: keep that, right now (a
    # later query would autoflush it into a transaction the view may roll back). Most
    # requests change nothing: no commit then, the row read needs none.
    if db.dirty or db.new or db.deleted:
        db.commit()
    if found is None:
        return None
    sso, user = found
    if user.disabled:
        return None
    return SessionUser(user, sso)


def current_sso() -> SsoSession | None:
    return current_user.sso if current_user.is_authenticated else None


def sign_in(user: User, *, amr: list[str], acr: str) -> SsoSession:
    """Start an SSO session for ``user`` and bind it to this browser, with a new id;
    commits the request's transaction."""
    svc = services()
    previous = current_sso()
    if previous is not None:
        sso_service.end(svc.db.session, previous, "replaced")
    sso = sso_service.start(svc.db.session, user, amr=amr, acr=acr,
                            lifetime=svc.settings.session.absolute_lifetime,
                            ip_address=client_ip(), user_agent=user_agent())
    svc.db.session.commit()
    session.regenerate()
    login_user(SessionUser(user, sso))
    return sso


def sign_out(reason: str = "logout") -> None:
    svc = services()
    sso = current_sso()
    if sso is not None:
        sso_service.end(svc.db.session, sso, reason)
        svc.db.session.commit()
        if svc.logout_propagator is not None:
            svc.logout_propagator.wake()  # tell the clients now, not at the next pass
    logout_user()
    session.destroy()


def auth_age(sso: SsoSession) -> dt.timedelta:
    reference = sso.reauthenticated_at or sso.auth_time
    return utcnow() - reference


def login_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("login.start", return_to=request.full_path.rstrip("?")))
        g.user = current_user.user
        return view(*args, **kwargs)
    return wrapper


def recent_auth_required(view: Callable) -> Callable:
    """Sensitive actions need a password typed within ``session.reauth_max_age``."""
    @functools.wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        max_age = services().settings.session.reauth_max_age
        if auth_age(current_sso()) > dt.timedelta(seconds=max_age):
            return redirect(url_for("login.reauthenticate",
                                    return_to=request.full_path.rstrip("?")))
        return view(*args, **kwargs)
    return wrapper

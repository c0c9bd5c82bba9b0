"""The login flow: email and password, then back to where the user was going
(an authorization request, or "Mon compte")."""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..identity import users
from ..persistence.models import Client, utcnow
from ..services import audit, services
from ..web.auth import login_required, sign_in
from ..web.forms import BaseForm, email_field, password_field
from . import second_factor
from .base import FlowError, create_flow, load_flow, safe_return_to

bp = Blueprint("login", __name__)

LOGIN_FLOW_TTL = 30 * 60
BAD_CREDENTIALS = _l("Adresse e-mail ou mot de passe incorrect.")


class LoginForm(BaseForm):
    email = email_field()
    password = password_field()


class ReauthForm(BaseForm):
    password = password_field()


def _default_target() -> str:
    return url_for("account.index")


def _client_name(client_id: str | None) -> str | None:
    if not client_id:
        return None
    client = services().db.session.get(Client, client_id)
    return client.name if client else None


@bp.route("/login", methods=["GET", "POST"])
def start():
    db = services().db.session
    flow_id = request.args.get("flow")
    if flow_id is None:
        return_to = safe_return_to(request.args.get("return_to")) or _default_target()
        if current_user.is_authenticated and not request.args.get("force"):
            return redirect(return_to)
        flow = create_flow(db, "login", state="choose_method", browser=session.browser_id,
                           return_to=return_to, ttl=LOGIN_FLOW_TTL, data={
                               "client_id": request.args.get("client_id"),
                               "acr": request.args.get("acr"),
                               "login_hint": (request.args.get("login_hint") or "")[:320]})
        db.commit()
    else:
        try:
            flow = load_flow(db, flow_id, "login", session.browser_id)
        except FlowError:
            # Expired or foreign flow: start again, keeping nothing from it.
            return redirect(url_for("login.start"))
    form = LoginForm()
    if request.method == "GET" and flow.data.get("login_hint"):
        form.email.data = flow.data["login_hint"]
    error = None
    if request.method == "POST" and form.validate_on_submit():
        svc = services()
        user = users.authenticate_password(db, svc.passwords, form.email.data,
                                           form.password.data)
        if user is None:
            audit("login.failure", outcome="failure", reason="bad_credentials")
            db.commit()
            error = BAD_CREDENTIALS
        elif "mfa.challenge" in current_app.view_functions and \
                second_factor.required(svc.settings, user, flow.data.get("acr")):
            flow.state = "second_factor"
            flow.user_id = user.id
            audit("login.password_ok", user_id=user.id)
            db.commit()
            return redirect(url_for("mfa.challenge", flow=flow.id))
        else:
            target = flow.return_to or _default_target()
            db.delete(flow)
            audit("login.success", user_id=user.id, method="pwd")
            sign_in(user, amr=["pwd"], acr="eidas1")
            return redirect(target)
    status = 200 if request.method == "GET" or (error is None and not form.errors) else 400
    return render_template("login/login.html", form=form, flow=flow, error=error,
                           client_name=_client_name(flow.data.get("client_id"))), status


@bp.route("/login/reauth", methods=["GET", "POST"])
@login_required
def reauthenticate():
    """Type the password again before a sensitive action."""
    svc = services()
    form = ReauthForm()
    return_to = safe_return_to(request.values.get("return_to")) or _default_target()
    error = None
    if request.method == "POST" and form.validate_on_submit():
        user = g.user
        if svc.passwords.verify(user.password_hash, form.password.data):
            current_user.sso.reauthenticated_at = utcnow()
            audit("login.reauthenticated", user_id=user.id)
            svc.db.session.commit()
            session.regenerate()
            return redirect(return_to)
        audit("login.reauth_failure", outcome="failure", user_id=user.id)
        svc.db.session.commit()
        error = _("Mot de passe incorrect.")
    status = 200 if request.method == "GET" else 400
    return render_template("login/reauth.html", form=form, error=error,
                           return_to=return_to), status

"""Acceptance of the terms of use: when ``registration.terms_version`` changes, signed-in
users accept the new version before going on (their next interactive page, which is
normally right after login). Silent requests (``prompt=none``) and protocol endpoints are
not interrupted."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import BooleanField
from wtforms.validators import DataRequired

from ..persistence.models import utcnow
from ..services import audit, services
from ..web.auth import login_required
from ..web.forms import BaseForm
from ..persistence.flows import safe_return_to

bp = Blueprint("terms", __name__)

# Endpoints never interrupted: protocol calls, static files, the terms pages, logout.
NOT_INTERRUPTED = {"static", "terms.accept", "terms_page", "home", "oidc.logout",
                   "oidc.discovery", "oidc.oauth_metadata", "oidc.jwks"}


# The second-factor steps of the login flow come before the session exists.
LOGIN_STEPS = {"mfa.challenge", "mfa.recovery", "mfa.login_enrol"}


class AcceptTermsForm(BaseForm):
    accept = BooleanField(_l("J'ai lu et j'accepte les conditions générales d'utilisation"),
                          validators=[DataRequired(message=_l(
                              "Vous devez accepter les conditions pour continuer."))])


def needs_acceptance() -> bool:
    if not current_user.is_authenticated:
        return False
    return current_user.user.terms_version != services().settings.registration.terms_version


def enforce_terms():
    """before_request hook."""
    endpoint = request.endpoint or ""
    if endpoint in NOT_INTERRUPTED or endpoint.startswith("login.") or endpoint in LOGIN_STEPS:
        return None
    if endpoint == "oidc.authorize" and request.values.get("prompt") == "none":
        return None
    if not needs_acceptance():
        return None
    return redirect(url_for("terms.accept", return_to=request.full_path.rstrip("?")))


@bp.route("/conditions-generales/accepter", methods=["GET", "POST"])
@login_required
def accept():
    svc = services()
    form = AcceptTermsForm()
    return_to = safe_return_to(request.values.get("return_to")) or url_for("account.index")
    if request.method == "POST" and form.validate_on_submit():
        user = current_user.user
        user.terms_version = svc.settings.registration.terms_version
        user.terms_accepted_at = utcnow()
        audit("terms.accepted", user_id=user.id, version=user.terms_version)
        svc.db.session.commit()
        return redirect(return_to)
    status = 400 if form.errors else 200
    return render_template("terms_accept.html", form=form, return_to=return_to,
                           version=svc.settings.registration.terms_version), status

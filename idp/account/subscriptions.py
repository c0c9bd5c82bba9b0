"""Abonnements: the themes the user follows and by which channel; the unsubscribe page
the signed links of the publishing apps' messages lead to."""

from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _

from ..hub import subscriptions as hub_subscriptions
from ..persistence.models import Theme
from ..services import audit, services
from ..web.auth import login_required
from . import bp
from .common import page, sms_allowed
from .forms import ButtonForm


@bp.route("/abonnements", methods=["GET", "POST"])
@login_required
def subscriptions():
    db = services().db.session
    themes = hub_subscriptions.themes(db)
    if request.method == "POST":
        if not ButtonForm().validate_on_submit():
            abort(400)
        can_sms = sms_allowed(g.user)
        choices = {}
        for theme in themes:
            channel = request.form.get(f"theme-{theme.id}")
            if channel == "sms" and not can_sms:
                channel = "email"
            choices[theme.id] = channel
        hub_subscriptions.set_subscriptions(db, g.user, choices)
        audit("subscriptions.updated", user_id=g.user.id)
        db.commit()
        flash(_("Vos abonnements sont enregistrés."), "success")
        return redirect(url_for("account.subscriptions"))
    return page("account/subscriptions.html", section="account.subscriptions", themes=themes,
                current=hub_subscriptions.user_subscriptions(db, g.user.id),
                sms_allowed=sms_allowed(g.user), form=ButtonForm())


@bp.route("/abonnements/desabonner/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):
    """From a link in a message: no sign-in needed, a button to confirm (mail scanners
    follow links, they do not press buttons)."""
    svc = services()
    db = svc.db.session
    found = hub_subscriptions.read_unsubscribe_token(svc.secret_key, token[:500])
    theme = db.get(Theme, found[1]) if found else None
    if found is None or theme is None:
        return page("account/unsubscribe.html", 404, section="account.subscriptions",
                    theme=None, done=False, form=ButtonForm())
    done = False
    if request.method == "POST":
        if not ButtonForm().validate_on_submit():
            abort(400)
        if hub_subscriptions.unsubscribe(db, found[0], theme.id):
            audit("subscriptions.unsubscribed", user_id=found[0], theme=theme.id)
        db.commit()
        done = True
    return page("account/unsubscribe.html", section="account.subscriptions", theme=theme,
                done=done, form=ButtonForm())

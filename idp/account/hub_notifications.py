"""Notifications: what the apps sent the user, marked read here, and how each category
is also sent (e-mail, SMS). Also the unread count in the header and the counts of the
account's home."""

from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from ..hub import notifications as hub_notifications
from ..hub import requests as hub_requests
from ..hub.wallet import user_documents
from ..hub.subscriptions import user_subscriptions
from ..services import audit, services
from ..web.auth import login_required
from . import bp
from .common import format_when, page, sms_allowed, ui_locale
from .forms import ButtonForm


@bp.app_context_processor
def _hub_globals():
    def unread_notifications() -> int:
        if not current_user.is_authenticated:
            return 0
        return hub_notifications.unread_count(services().db.session, current_user.user.id)

    return {"hub_unread_notifications": unread_notifications, "hub_counts": hub_counts}


def hub_counts() -> dict[str, int]:
    """What the account's home counts: requests in progress, unread notifications and
    messages, documents, subscriptions."""
    db, uid = services().db.session, g.user.id
    items = hub_requests.user_requests(db, uid)
    return {
        "requests": len(items),
        "open_requests": sum(1 for r, _c in items
                             if r.status not in hub_requests.FINAL_STATUSES),
        "unread_messages": hub_requests.unread_messages(db, uid),
        "notifications": hub_notifications.unread_count(db, uid),
        "documents": len(user_documents(db, uid)),
        "subscriptions": len(user_subscriptions(db, uid)),
    }


@bp.route("/notifications")
@login_required
def notifications():
    db = services().db.session
    locale = ui_locale()
    items = hub_notifications.user_notifications(db, g.user.id)
    return page("account/notifications.html", section="account.notifications", items=items,
                preferences=hub_notifications.preferences(db, g.user),
                categories=hub_notifications.CATEGORIES, sms_allowed=sms_allowed(g.user),
                when=lambda v: format_when(v, locale), form=ButtonForm())


@bp.route("/notifications/<notification_id>/lue", methods=["POST"])
@login_required
def notification_read(notification_id: str):
    if not ButtonForm().validate_on_submit():
        abort(400)
    db = services().db.session
    hub_notifications.mark_read(db, g.user.id, notification_id[:36])
    db.commit()
    return redirect(url_for("account.notifications"))


@bp.route("/notifications/tout-lire", methods=["POST"])
@login_required
def notifications_read_all():
    if not ButtonForm().validate_on_submit():
        abort(400)
    db = services().db.session
    count = hub_notifications.mark_read(db, g.user.id)
    db.commit()
    flash(ngettext("%(num)d notification marquée comme lue.",
                   "%(num)d notifications marquées comme lues.", count), "success")
    return redirect(url_for("account.notifications"))


@bp.route("/notifications/preferences", methods=["POST"])
@login_required
def notification_preferences():
    if not ButtonForm().validate_on_submit():
        abort(400)
    db = services().db.session
    can_sms = sms_allowed(g.user)
    wanted = {category: {"email": request.form.get(f"{category}-email") == "oui",
                         "sms": can_sms and request.form.get(f"{category}-sms") == "oui"}
              for category in hub_notifications.CATEGORIES}
    hub_notifications.set_preferences(db, g.user, wanted)
    audit("preferences.updated", user_id=g.user.id, what="notifications")
    db.commit()
    flash(_("Vos préférences de notification sont enregistrées."), "success")
    return redirect(url_for("account.notifications") + "#preferences")

"""Préférences: e-mail notifications, preferred contact mode, language."""

from __future__ import annotations

from flask import flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import refresh

from ..services import audit, services
from ..web.auth import login_required
from . import bp
from .common import page, sms_allowed
from .forms import PreferencesForm

FIELDS = ("notifications_email", "preferred_contact", "locale")


@bp.route("/preferences", methods=["GET", "POST"])
@login_required
def preferences():
    user = g.user
    svc = services()
    form = PreferencesForm(obj=user if request.method == "GET" else None)
    form.locale.choices = [c for c in form.locale.choices if c.value in svc.settings.locales]
    if request.method == "POST" and form.validate_on_submit():
        if form.preferred_contact.data == "sms" and not sms_allowed(user):
            form.preferred_contact.errors.append(
                _("Pour recevoir vos codes et notifications par SMS, ajoutez d'abord un "
                  "numéro de téléphone mobile et validez-le."))
        else:
            changed = [name for name in FIELDS if getattr(user, name) != form[name].data]
            for name in changed:
                setattr(user, name, form[name].data)
            if changed:
                audit("preferences.updated", user_id=user.id, fields=changed)
                svc.db.session.commit()
            # The chosen language applies at once to this browser.
            session["lang"] = user.locale
            refresh()
            flash(_("Vos préférences ont été enregistrées."), "success")
            return redirect(url_for("account.preferences"))
    status = 400 if request.method == "POST" else 200
    return page("account/preferences.html", status, section="account.preferences", form=form,
                sms_allowed=sms_allowed(user))

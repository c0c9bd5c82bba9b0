"""Profil: the summary ("Mon compte") and the edition of identity and postal address.

Phone and contact e-mail change through the code flow (``contact.py``), the login
e-mail and the password in Sécurité."""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _

from ..messaging.phone import format_for
from ..services import audit, services
from ..web.auth import login_required
from . import bp
from .common import page
from .forms import ProfileForm

PROFILE_FIELDS = ("given_name", "family_name", "birthdate", "street_address", "postal_code",
                  "locality", "country")


def display_phone(e164: str | None) -> str:
    if not e164:
        return ""
    try:
        return format_for(e164, services().settings.messaging.default_region)
    except Exception:  # noqa: BLE001 - a stored value we cannot parse is shown as is
        return e164


@bp.route("/")
@login_required
def index():
    return page("account/index.html", section="account.index", user=g.user,
                phone=display_phone(g.user.phone_number))


@bp.route("/profil", methods=["GET", "POST"])
@login_required
def edit_profile():
    user = g.user
    form = ProfileForm(obj=user if request.method == "GET" else None)
    if request.method == "POST" and form.validate_on_submit():
        changed = []
        for name in PROFILE_FIELDS:
            value = form[name].data
            if isinstance(value, str):
                value = value.strip() or None
                if name in ("given_name", "family_name"):
                    value = value or ""
            if getattr(user, name) != value:
                setattr(user, name, value)
                changed.append(name)
        if changed:
            audit("profile.updated", user_id=user.id, fields=changed)
            services().db.session.commit()
            flash(_("Votre profil a été enregistré."), "success")
        else:
            flash(_("Aucune modification à enregistrer."), "info")
        return redirect(url_for("account.index"))
    status = 400 if request.method == "POST" else 200
    return page("account/profile_edit.html", status, section="account.index", form=form)

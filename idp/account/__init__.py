"""The account space "Mon compte"."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from ..web.auth import login_required

bp = Blueprint("account", __name__, url_prefix="/compte")


@bp.route("/")
@login_required
def index():
    return render_template("account/index.html", user=g.user), 200, {"Cache-Control": "no-store"}

"""The legal pages every public service shows: the legal notice, the personal data notice
(RGPD and loi « Informatique et Libertés »), the cookies used. Their content comes from
``[legal]``, ``[support]`` and the settings they describe (lifetimes, retention)."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..services import services

bp = Blueprint("legal", __name__)


def _context() -> dict:
    settings = services().settings
    return {"legal": settings.legal, "support": settings.support, "settings": settings}


@bp.route("/mentions-legales")
def notice():
    return render_template("legal/notice.html", **_context())


@bp.route("/donnees-personnelles")
def privacy():
    return render_template("legal/privacy.html", **_context())


@bp.route("/cookies")
def cookies():
    return render_template("legal/cookies.html", **_context())

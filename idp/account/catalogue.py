"""Nouvelle démarche en ligne: the catalogue of the démarche apps on offer."""

from __future__ import annotations

from ..services import services
from ..web.auth import login_required
from . import bp
from .applications import catalogue
from .common import page


@bp.route("/demarches/nouvelle")
@login_required
def new_demarche():
    return page("account/catalogue.html", section="account.new_demarche",
                apps=catalogue(services().db.session))

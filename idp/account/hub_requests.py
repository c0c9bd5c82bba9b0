"""Mes demandes: the requests démarche apps filed for the user, their status history
and the messages with the services; the user answers here."""

from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ..hub import HubError
from ..hub import requests as hub_requests
from ..persistence.models import Client, HubRequest
from ..services import audit, services
from ..web.auth import login_required
from . import bp
from .common import format_when, page, ui_locale
from .hub_forms import ReplyForm


def _own(request_id: str) -> tuple[HubRequest, Client]:
    db = services().db.session
    item = db.get(HubRequest, request_id)
    if item is None or item.user_id != g.user.id:
        abort(404)
    return item, db.get(Client, item.client_id)


def delay_label(days: int | None) -> str:
    if days is None:
        return _("Non communiqué")
    if days == 0:
        return _("Immédiat")
    return _("%(days)s jours", days=days) if days != 1 else _("1 jour")


@bp.route("/demandes")
@login_required
def requests():
    db = services().db.session
    query = (request.args.get("q") or "").strip()[:100]
    status = request.args.get("statut") or ""
    client_id = request.args.get("service") or ""
    items = hub_requests.user_requests(db, g.user.id, query=query, status=status,
                                       client_id=client_id)
    apps = db.execute(select(Client.client_id, Client.name).join(
        HubRequest, HubRequest.client_id == Client.client_id).where(
        HubRequest.user_id == g.user.id).distinct().order_by(Client.name)).all()
    return page("account/requests.html", section="account.requests", items=items,
                query=query, status_filter=status if status in hub_requests.STATUSES else "",
                client_id=client_id, apps=apps, statuses=hub_requests.STATUSES,
                final=hub_requests.FINAL_STATUSES, delay_label=delay_label,
                filtered=bool(query or status or client_id))


@bp.route("/demandes/<request_id>", methods=["GET", "POST"])
@login_required
def request_detail(request_id: str):
    db = services().db.session
    item, client = _own(request_id)
    form = ReplyForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                hub_requests.add_message(db, item, "citizen", form.body.data)
            except HubError:
                flash(_("Cette demande a reçu trop de messages : contactez le service "
                        "directement."), "error")
                return redirect(url_for("account.request_detail", request_id=item.id))
            audit("hub.request_answered", user_id=g.user.id, client_id=item.client_id)
            db.commit()
            flash(_("Votre message a été envoyé au service."), "success")
            return redirect(url_for("account.request_detail", request_id=item.id) + "#messages")
        status = 400
    elif hub_requests.mark_read(item, "service"):
        db.commit()
    locale = ui_locale()
    return page("account/request_detail.html", status, section="account.requests",
                item=item, client=client, form=form, statuses=hub_requests.STATUSES,
                delay_label=delay_label, when=lambda v: format_when(v, locale))

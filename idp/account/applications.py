"""Applications: the démarche apps the user has used, what each may read, and a way
to withdraw that access; plus the catalogue of the apps on offer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import abort, flash, g, redirect, url_for
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..oidc.claims import CLAIM_LABELS_FR, SCOPE_LABELS_FR, capitalized
from ..identity.grants import revoke_user_grants
from ..persistence.models import Client, Consent, Grant
from ..services import audit, services
from ..web.auth import login_required
from . import bp
from .common import format_when, page, ui_locale
from .forms import ButtonForm


@dataclass
class UsedApp:
    client: Client
    scopes: set[str] = field(default_factory=set)
    claims: set[str] = field(default_factory=set)  # consented to one by one
    last_used: dt.datetime | None = None

    @property
    def labels(self) -> list[str]:
        return [*(SCOPE_LABELS_FR[s] for s in SCOPE_LABELS_FR if s in self.scopes),
                *(capitalized(CLAIM_LABELS_FR[c]) for c in sorted(self.claims)
                  if c in CLAIM_LABELS_FR)]

    def seen(self, when: dt.datetime | None) -> None:
        if when is not None and (self.last_used is None or when > self.last_used):
            self.last_used = when


def used_apps(session: Session, user_id: str) -> list[UsedApp]:
    """Apps with a consent, or with an authorization still in force."""
    apps: dict[str, UsedApp] = {}
    rows = session.execute(select(Consent, Client).join(
        Client, Client.client_id == Consent.client_id).where(Consent.user_id == user_id))
    for consent, client in rows:
        app = apps.setdefault(client.client_id, UsedApp(client))
        app.scopes.update(consent.scope.split())
        app.claims.update(consent.claims or ())
        app.seen(consent.last_used_at or consent.granted_at)
    rows = session.execute(select(Grant, Client).join(
        Client, Client.client_id == Grant.client_id).where(
        Grant.user_id == user_id, Grant.revoked_at.is_(None)))
    for grant, client in rows:
        app = apps.setdefault(client.client_id, UsedApp(client))
        app.scopes.update(grant.scope.split())
        app.claims.update(grant.claims or ())
        app.seen(grant.created_at)
    return sorted(apps.values(), key=lambda a: a.client.name.casefold())


def catalogue(session: Session) -> list[Client]:
    return list(session.scalars(select(Client).where(
        Client.listed.is_(True), Client.home_url != "", Client.disabled.is_(False))
        .order_by(Client.name)))


@bp.route("/applications")
@login_required
def applications():
    db = services().db.session
    locale = ui_locale()
    apps = used_apps(db, g.user.id)
    return page("account/applications.html", section="account.applications", apps=apps,
                catalogue=catalogue(db), form=ButtonForm(),
                when=lambda value: format_when(value, locale))


@bp.route("/applications/<client_id>/retirer", methods=["POST"])
@login_required
def revoke_application(client_id: str):
    if not ButtonForm().validate_on_submit():
        abort(400)
    user = g.user
    db = services().db.session
    client = db.get(Client, client_id)
    if client is None:
        abort(404)
    removed = db.execute(delete(Consent).where(
        Consent.user_id == user.id, Consent.client_id == client_id)
        .execution_options(synchronize_session=False)).rowcount
    revoked = revoke_user_grants(db, user.id, "revoked_by_user", client_id=client_id)
    if removed or revoked:
        audit("consent.revoked", user_id=user.id, client_id=client_id, grants_revoked=revoked)
        db.commit()
    flash(_("L'application « %(name)s » n'a plus accès à vos informations. Elle vous "
            "demandera à nouveau votre accord si vous l'utilisez.", name=client.name), "success")
    return redirect(url_for("account.applications"))

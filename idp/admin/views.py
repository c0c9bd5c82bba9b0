"""The admin console (``/admin``): relying parties, accounts and the audit trail.

Only for accounts with ``User.is_admin``, and only with a recent authentication (the
password typed within ``session.reauth_max_age``): others get 403. Every change is an
``admin.*`` audit event naming the administrator (``admin_id``). Client secrets are
shown once, in the response to the request that made them, and never stored in clear.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from ..identity import sso as sso_service
from ..identity.users import normalize_email
from ..identity.grants import revoke_user_grants
from ..persistence.models import AuditEvent, Client, Grant, User, utcnow
from ..services import audit, services
from ..web.auth import recent_auth_required
from . import clients as registry
from .forms import AuditFilterForm, ClientCreateForm, ClientEditForm, ConfirmForm, uri_lines

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100

# The shared decorator, used as a check: a redirect to sign in or to type the password
# again, or None when the authentication is recent enough.
_recent_auth = recent_auth_required(lambda: None)


@bp.before_request
def _guard():
    if current_user.is_authenticated and not current_user.user.is_admin:
        abort(403)
    return _recent_auth()


def _db():
    return services().db.session


def _page() -> int:
    try:
        return max(1, min(int(request.args.get("page", 1)), 10_000))
    except ValueError:
        return 1


def _search() -> str:
    return (request.args.get("q") or "").strip()[:200]


def _get_or_404(model, key: str):
    found = _db().get(model, key) if len(key) <= 64 else None
    if found is None:
        abort(404)
    return found


def _paged(query, page: int, size: int = PAGE_SIZE) -> tuple[list, bool]:
    """One page of results, and whether there is a next one."""
    items = list(_db().scalars(query.offset((page - 1) * size).limit(size + 1)))
    return items[:size], len(items) > size


def _actor() -> dict:
    return {"admin_id": g.user.id, "via": "console"}


@bp.route("/")
def index():
    db = _db()
    counts = {
        "clients": db.scalar(select(func.count()).select_from(Client)),
        "users": db.scalar(select(func.count()).select_from(User)),
        "disabled": db.scalar(select(func.count()).select_from(User).where(User.disabled)),
    }
    return render_template("admin/index.html", counts=counts)


# -- clients -----------------------------------------------------------------------
def _load_client(client_id: str) -> Client:
    return _get_or_404(Client, client_id)


@bp.route("/clients")
def clients():
    q, page = _search(), _page()
    query = select(Client).order_by(Client.name, Client.client_id)
    if q:
        needle = q.lower()
        query = query.where(func.lower(Client.name).contains(needle, autoescape=True)
                            | func.lower(Client.client_id).contains(needle, autoescape=True))
    items, has_next = _paged(query, page)
    return render_template("admin/clients.html", clients=items, q=q, page=page,
                           has_next=has_next)


@bp.route("/clients/nouveau", methods=["GET", "POST"])
def client_new():
    form = ClientCreateForm(data={"require_consent": True, "listed": True})
    error = None
    if request.method == "POST" and form.validate_on_submit():
        db = _db()
        auth_method = form.auth_method.data
        try:
            client, secret = registry.create_client(
                db, name=form.name.data.strip(), redirect_uris=uri_lines(form.redirect_uris.data),
                post_logout_redirect_uris=uri_lines(form.post_logout_redirect_uris.data),
                auth_method=auth_method, public=auth_method == "none",
                require_consent=form.require_consent.data,
                description=(form.description.data or "").strip(),
                home_url=(form.home_url.data or "").strip())
        except registry.ClientError as exc:
            db.rollback()
            error = _("L'application n'a pas pu être enregistrée : %(reason)s", reason=str(exc))
        else:
            client.listed = form.listed.data
            audit("admin.client_created", user_id=g.user.id, client_id=client.client_id,
                  **_actor())
            db.commit()
            return render_template("admin/client_secret.html", client=client, secret=secret,
                                   created=True)
    status = 400 if request.method == "POST" else 200
    return render_template("admin/client_form.html", form=form, client=None,
                           error=error), status


def _client_data(client: Client) -> dict:
    return {"name": client.name, "home_url": client.home_url,
            "redirect_uris": "\n".join(client.redirect_uris),
            "post_logout_redirect_uris": "\n".join(client.post_logout_redirect_uris),
            "require_consent": client.require_consent, "listed": client.listed}


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
def client(client_id: str):
    client = _load_client(client_id)
    form = ClientEditForm(data=_client_data(client))
    if request.method == "POST" and form.validate_on_submit():
        redirect_uris = uri_lines(form.redirect_uris.data)
        if "authorization_code" in client.grant_types and not redirect_uris:
            form.redirect_uris.errors.append(_("Indiquez au moins une adresse."))
        else:
            new = {"name": form.name.data.strip(), "home_url": (form.home_url.data or "").strip(),
                   "redirect_uris": redirect_uris,
                   "post_logout_redirect_uris": uri_lines(form.post_logout_redirect_uris.data),
                   "require_consent": form.require_consent.data, "listed": form.listed.data}
            changed = sorted(k for k, v in new.items() if getattr(client, k) != v)
            for key in changed:
                setattr(client, key, new[key])
            if changed:
                audit("admin.client_updated", user_id=g.user.id, client_id=client.client_id,
                      fields=changed, **_actor())
            _db().commit()
            services().clients.forget(client.client_id)
            flash(_("Les modifications sont enregistrées."), "success")
            return redirect(url_for("admin.client", client_id=client.client_id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/client_form.html", form=form, client=client,
                           confirm=ConfirmForm(), error=None), status


@bp.route("/clients/<client_id>/secret", methods=["POST"])
def client_rotate(client_id: str):
    client = _load_client(client_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        secret = registry.rotate_secret(_db(), client)
    except registry.ClientError:
        flash(_("Cette application ne s'authentifie pas par un secret."), "error")
        return redirect(url_for("admin.client", client_id=client.client_id))
    audit("admin.client_secret_rotated", user_id=g.user.id, client_id=client.client_id,
          **_actor())
    _db().commit()
    services().clients.forget(client.client_id)
    return render_template("admin/client_secret.html", client=client, secret=secret,
                           created=False)


@bp.route("/clients/<client_id>/suppression", methods=["GET", "POST"])
def client_delete(client_id: str):
    client = _load_client(client_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        name = client.name
        registry.delete_client(_db(), client)
        audit("admin.client_deleted", user_id=g.user.id, client_id=client_id, **_actor())
        _db().commit()
        services().clients.forget(client_id)
        flash(_("L'application « %(name)s » est supprimée.", name=name), "success")
        return redirect(url_for("admin.clients"))
    grants = _db().scalar(select(func.count()).select_from(Grant).where(
        Grant.client_id == client.client_id, Grant.revoked_at.is_(None)))
    return render_template("admin/client_delete.html", client=client, form=form,
                           grants=grants)


# -- users ---------------------------------------------------------------------------
def _load_user(user_id: str) -> User:
    return _get_or_404(User, user_id)


@bp.route("/usagers")
def users():
    q, page = _search(), _page()
    query = select(User).order_by(User.email)
    if q:
        query = query.where(User.email.contains(normalize_email(q), autoescape=True))
    items, has_next = _paged(query, page)
    return render_template("admin/users.html", users=items, q=q, page=page,
                           has_next=has_next)


@bp.route("/usagers/<user_id>")
def user(user_id: str):
    user = _load_user(user_id)
    db = _db()
    sessions = len(sso_service.active_for_user(db, user.id))
    grants = db.scalar(select(func.count()).select_from(Grant).where(
        Grant.user_id == user.id, Grant.revoked_at.is_(None)))
    return render_template("admin/user.html", user=user, sessions=sessions, grants=grants,
                           form=ConfirmForm())


@bp.route("/usagers/<user_id>/desactivation", methods=["POST"])
def user_disable(user_id: str):
    user = _load_user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if user.id == g.user.id:
        flash(_("Vous ne pouvez pas désactiver votre propre compte."), "error")
        return redirect(url_for("admin.user", user_id=user.id))
    db = _db()
    user.disabled = True
    ended = sso_service.end_all_for_user(db, user.id, "admin_disabled")
    revoked = revoke_user_grants(db, user.id, "admin_disabled")
    audit("admin.user_disabled", user_id=user.id, sessions_ended=ended, grants_revoked=revoked,
          **_actor())
    db.commit()
    flash(_("Le compte est désactivé : ses sessions sont fermées et ses autorisations "
            "révoquées."), "success")
    return redirect(url_for("admin.user", user_id=user.id))


@bp.route("/usagers/<user_id>/activation", methods=["POST"])
def user_enable(user_id: str):
    user = _load_user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    user.disabled = False
    audit("admin.user_enabled", user_id=user.id, **_actor())
    _db().commit()
    flash(_("Le compte est réactivé."), "success")
    return redirect(url_for("admin.user", user_id=user.id))


# -- audit trail ---------------------------------------------------------------------
@bp.route("/journal")
def audit_trail():
    form = AuditFilterForm(request.args)
    page = _page()
    events: list[AuditEvent] = []
    has_next = False
    if form.validate():
        query = select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id)
        if form.type.data:
            query = query.where(AuditEvent.type.startswith(form.type.data.strip(),
                                                           autoescape=True))
        if form.user.data:
            wanted = form.user.data.strip()
            if "@" in wanted:
                found = _db().scalar(select(User.id).where(User.email == normalize_email(wanted)))
                wanted = found or "-"
            query = query.where(AuditEvent.user_id == wanted)
        if form.client.data:
            query = query.where(AuditEvent.client_id == form.client.data.strip())
        start, end = form.bounds()
        if start:
            query = query.where(AuditEvent.created_at >= start)
        if end:
            query = query.where(AuditEvent.created_at < end)
        events, has_next = _paged(query, page, AUDIT_PAGE_SIZE)
    status = 200 if not form.errors else 400
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("admin/audit.html", form=form, events=events, page=page,
                           has_next=has_next, args=args, now=utcnow(),
                           details=lambda e: json.dumps(e.details or {}, ensure_ascii=False,
                                                        sort_keys=True, default=str)), status


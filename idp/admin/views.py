"""The admin console (``/admin``): relying parties, accounts, initial access tokens and
the audit trail.

Only for accounts with ``User.is_admin`` whose session was established with a second
factor, and only with a recent authentication (the password typed within
``session.reauth_max_age``): others get 403, or are sent to sign in again with their
second factor. Every change is an ``admin.*`` audit event naming the administrator
(``admin_id``). Client secrets and initial access tokens are shown once, in the response
to the request that made them, and never stored in clear.
"""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, or_, select

from ..flows import second_factor
from ..flows.registration import send_confirmation
from ..identity import sso as sso_service
from ..identity.users import normalize_email
from ..identity.grants import revoke_user_grants
from ..persistence.models import (AuditEvent, Client, Grant, InitialAccessToken, User,
                                  utcnow)
from ..security import lockout
from ..services import audit, services
from ..web.auth import recent_auth_required
from ..web.common import format_when
from ..web.notices import security_notice
from . import clients as registry
from . import initial_tokens
from .forms import (AuditFilterForm, ClientCreateForm, ClientEditForm, ConfirmForm,
                    InitialTokenForm, LockForm, uri_lines)

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100
# A client's errors shown on its page: how far back.
RECENT_ERRORS_DAYS = 7
# Refused authorizations are not failures of the provider, but the client's users'.
CLIENT_ERROR_TYPES = ("consent.denied",)

# The shared decorator, used as a check: a redirect to sign in or to type the password
# again, or None when the authentication is recent enough.
_recent_auth = recent_auth_required(lambda: None)


@bp.before_request
def _guard():
    if current_user.is_authenticated:
        if not current_user.user.is_admin:
            abort(403)
        if not second_factor.session_has_second_factor(current_user.sso):
            flash(_("La console d'administration demande une connexion avec la double "
                    "authentification. Connectez-vous de nouveau : après votre mot de "
                    "passe, saisissez le code de votre application d'authentification "
                    "(ou configurez-la si ce n'est pas encore fait)."), "error")
            # Back here afterwards (a form's action cannot be gone back to with GET).
            target = request.full_path.rstrip("?") if request.method == "GET" \
                else url_for("admin.index")
            return redirect(url_for("login.start", force=1, acr="eidas2", return_to=target))
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
    now = utcnow()
    counts = {
        "clients": db.scalar(select(func.count()).select_from(Client)),
        "clients_disabled": db.scalar(select(func.count()).select_from(Client)
                                      .where(Client.disabled)),
        "users": db.scalar(select(func.count()).select_from(User)),
        "disabled": db.scalar(select(func.count()).select_from(User).where(User.disabled)),
        "tokens": len(initial_tokens.list_tokens(db)),
        "client_errors": db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.client_id.is_not(None), AuditEvent.outcome == "failure",
            AuditEvent.created_at >= now - dt.timedelta(days=1))),
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
    since = utcnow() - dt.timedelta(days=RECENT_ERRORS_DAYS)
    errors = _db().scalar(select(func.count()).select_from(AuditEvent).where(
        _client_errors(client.client_id), AuditEvent.created_at >= since))
    token = _db().get(InitialAccessToken, client.initial_access_token_id) \
        if client.initial_access_token_id else None
    return render_template("admin/client_form.html", form=form, client=client,
                           confirm=ConfirmForm(), error=None, recent_errors=errors,
                           recent_days=RECENT_ERRORS_DAYS, registered_with=token), status


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


@bp.route("/clients/<client_id>/desactivation", methods=["POST"])
def client_disable(client_id: str):
    return _set_client_disabled(client_id, True)


@bp.route("/clients/<client_id>/activation", methods=["POST"])
def client_enable(client_id: str):
    return _set_client_disabled(client_id, False)


def _set_client_disabled(client_id: str, disabled: bool):
    client = _load_client(client_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if client.disabled != disabled:
        client.disabled = disabled
        audit("admin.client_disabled" if disabled else "admin.client_enabled",
              user_id=g.user.id, client_id=client.client_id, **_actor())
        _db().commit()
        services().clients.forget(client.client_id)
    flash(_("L'application est désactivée : elle est refusée partout et ses jetons ne sont "
            "plus acceptés.") if disabled else _("L'application est réactivée."), "success")
    return redirect(url_for("admin.client", client_id=client.client_id))


def _client_errors(client_id: str):
    """A client's errors in the audit trail: failed requests, refused authorizations."""
    return (AuditEvent.client_id == client_id) & or_(
        AuditEvent.outcome == "failure", AuditEvent.type.in_(CLIENT_ERROR_TYPES))


@bp.route("/clients/<client_id>/erreurs")
def client_errors(client_id: str):
    client = _load_client(client_id)
    page = _page()
    query = select(AuditEvent).where(_client_errors(client.client_id)) \
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id)
    events, has_next = _paged(query, page, AUDIT_PAGE_SIZE)
    return render_template("admin/client_errors.html", client=client, events=events,
                           page=page, has_next=has_next, details=_details)


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
    return _user_page(user, LockForm(formdata=None))


def _user_page(user: User, lock_form: LockForm, status: int = 200):
    db = _db()
    svc = services()
    sessions = len(sso_service.active_for_user(db, user.id))
    grants = db.scalar(select(func.count()).select_from(Grant).where(
        Grant.user_id == user.id, Grant.revoked_at.is_(None)))
    lock = db.scalar(select(AuditEvent).where(
        AuditEvent.user_id == user.id, AuditEvent.type == "admin.user_locked")
        .order_by(AuditEvent.created_at.desc()).limit(1)) if user.disabled else None
    blocked = lockout.blocked_until(svc.kv, user.email)
    return render_template(
        "admin/user.html", user=user, sessions=sessions, grants=grants, form=ConfirmForm(),
        lock_form=lock_form, lock=lock, failures=lockout.failures(svc.kv, user.email),
        error=bool(lock_form.errors),  # the page's title says so (base.html)
        blocked_until=dt.datetime.fromtimestamp(blocked, dt.timezone.utc) if blocked
        else None), status


def _end_everything(user: User, reason: str) -> dict:
    """End the account's SSO sessions and token families; the counts, for the trail."""
    db = _db()
    return {"sessions_ended": sso_service.end_all_for_user(db, user.id, reason),
            "grants_revoked": revoke_user_grants(db, user.id, reason)}


@bp.route("/usagers/<user_id>/verrouillage", methods=["POST"])
def user_lock(user_id: str):
    user = _load_user(user_id)
    form = LockForm()
    if not form.validate_on_submit():
        return _user_page(user, form, 400)
    if user.id == g.user.id:
        flash(_("Vous ne pouvez pas verrouiller votre propre compte."), "error")
        return redirect(url_for("admin.user", user_id=user.id))
    if not user.disabled:
        user.disabled = True
        ended = _end_everything(user, "admin_locked")
        audit("admin.user_locked", user_id=user.id, reason=form.reason.data.strip(),
              **ended, **_actor())
        _db().commit()
    flash(_("Le compte est verrouillé : ses sessions sont fermées et ses autorisations "
            "révoquées. Il ne permet plus de se connecter."), "success")
    return redirect(url_for("admin.user", user_id=user.id))


@bp.route("/usagers/<user_id>/deverrouillage", methods=["POST"])
def user_unlock(user_id: str):
    """Unlock an account an administrator locked, and lift a block of its logins after
    too many wrong passwords."""
    user = _load_user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    was_locked = user.disabled
    was_blocked = bool(lockout.blocked_until(services().kv, user.email)) or \
        lockout.failures(services().kv, user.email) > 0
    user.disabled = False
    lockout.clear(services().kv, user.email)
    audit("admin.user_unlocked", user_id=user.id, was_locked=was_locked,
          login_failures_cleared=was_blocked, **_actor())
    _db().commit()
    flash(_("Le compte est déverrouillé : il permet de nouveau de se connecter."), "success")
    return redirect(url_for("admin.user", user_id=user.id))


@bp.route("/usagers/<user_id>/reinitialisation", methods=["POST"])
def user_force_reset(user_id: str):
    """The password stops working; the owner chooses a new one through « Mot de passe
    perdu », and is told by e-mail."""
    user = _load_user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if user.id == g.user.id:
        flash(_("Pour changer votre propre mot de passe, utilisez « Mon compte »."), "error")
        return redirect(url_for("admin.user", user_id=user.id))
    now = utcnow()
    user.password_hash = None
    user.password_changed_at = now
    ended = _end_everything(user, "admin_password_reset")
    audit("admin.password_reset_forced", user_id=user.id, **ended, **_actor())
    _db().commit()
    sent = security_notice(user, "password_reset_required",
                           when=format_when(now, user.locale))
    if sent:
        flash(_("Le mot de passe ne fonctionne plus et les sessions sont fermées. L'usager "
                "est prévenu par e-mail de choisir un nouveau mot de passe avec « Mot de "
                "passe perdu »."), "success")
    else:
        flash(_("Le mot de passe ne fonctionne plus et les sessions sont fermées, mais "
                "l'e-mail n'a pas pu être envoyé : prévenez l'usager d'une autre façon."),
              "error")
    return redirect(url_for("admin.user", user_id=user.id))


@bp.route("/usagers/<user_id>/confirmation", methods=["POST"])
def user_resend_confirmation(user_id: str):
    user = _load_user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if user.email_verified:
        flash(_("L'adresse e-mail de ce compte est déjà confirmée."), "error")
        return redirect(url_for("admin.user", user_id=user.id))
    audit("admin.confirmation_resent", user_id=user.id, **_actor())
    if send_confirmation(user):  # commits the new link and the event
        flash(_("Un nouveau lien de confirmation a été envoyé à %(email)s ; les précédents "
                "ne fonctionnent plus.", email=user.email), "success")
    else:
        flash(_("Le lien de confirmation n'a pas pu être envoyé. Réessayez plus tard."),
              "error")
    return redirect(url_for("admin.user", user_id=user.id))


# -- initial access tokens (client registration) ---------------------------------------
@bp.route("/jetons-enregistrement", methods=["GET", "POST"])
def initial_access_tokens():
    settings = services().settings.client_registration
    form = InitialTokenForm(max_days=settings.initial_token_max_ttl // 86400,
                            data={"days": max(1, settings.initial_token_ttl // 86400)})
    db = _db()
    if request.method == "POST" and form.validate_on_submit():
        token, value = initial_tokens.issue(
            db, label=form.label.data, ttl=form.days.data * 86400,
            max_uses=form.max_uses.data, created_by=g.user.id)
        audit("admin.initial_access_token_created", user_id=g.user.id,
              initial_access_token_id=token.id, max_uses=token.max_uses,
              expires_at=token.expires_at.isoformat(), **_actor())
        db.commit()
        return render_template("admin/initial_token_created.html", token=token, value=value,
                               registration_endpoint=services().settings.issuer
                               + url_for("oidc.client_registration"))
    tokens = initial_tokens.list_tokens(db, include_inactive=True)[:PAGE_SIZE]
    registered = dict(db.execute(
        select(Client.initial_access_token_id, func.count())
        .where(Client.initial_access_token_id.in_([t.id for t in tokens]))
        .group_by(Client.initial_access_token_id)).all()) if tokens else {}
    status = 400 if request.method == "POST" else 200
    return render_template("admin/initial_tokens.html", form=form, tokens=tokens,
                           registered=registered, state=initial_tokens.state,
                           confirm=ConfirmForm(), enabled=settings.enabled), status


@bp.route("/jetons-enregistrement/<token_id>/revocation", methods=["POST"])
def initial_access_token_revoke(token_id: str):
    token = initial_tokens.find(_db(), token_id)
    if token is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if initial_tokens.revoke(_db(), token):
        audit("admin.initial_access_token_revoked", user_id=g.user.id,
              initial_access_token_id=token.id, **_actor())
        _db().commit()
    flash(_("Le jeton « %(label)s » est révoqué.", label=token.label), "success")
    return redirect(url_for("admin.initial_access_tokens"))


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
                           details=_details), status


def _details(event: AuditEvent) -> str:
    return json.dumps(event.details or {}, ensure_ascii=False, sort_keys=True, default=str)


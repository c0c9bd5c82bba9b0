"""The ``idp`` command: server, database, keys, clients, users, demo.

Every command uses the same configuration as the server (config/idp.toml and IDP_*
environment variables).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup

from . import create_app


def _svc():
    return current_app.extensions["idp"]


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False,
             load_dotenv=False)
def main() -> None:
    """compte-usager: OpenID Connect identity provider."""


# -- server -------------------------------------------------------------------------
@main.command("serve", with_appcontext=False)
@click.option("--host", default=None, help="default: server.host")
@click.option("--port", type=int, default=None, help="default: server.port")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="worker processes (0: one per core; default: server.workers)")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Python threads per worker (default: server.threads)")
def serve(host: str | None, port: int | None, workers: int | None,
          threads: int | None) -> None:
    """Run the production server (granian) with the settings of config/."""
    from .config import load_settings
    from .server import effective, serve as run_server

    settings = load_settings()
    server = effective(settings.server, host=host, port=port, workers=workers, threads=threads)
    click.echo(f"serving {settings.issuer} on http://{server.host}:{server.port} "
               f"({server.workers} worker(s), {server.threads} thread(s) each)")
    run_server(settings, server)


# -- database -----------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    from .persistence.migrate import current_revision, upgrade

    upgrade(_svc().db, revision)
    click.echo(f"database at revision {current_revision(_svc().db)}")


@db.command("current")
def db_current() -> None:
    from .persistence.migrate import current_revision, head_revision

    click.echo(f"current: {current_revision(_svc().db)}  head: {head_revision()}")


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Generate a migration from the models (for developers)."""
    from .persistence.migrate import revision

    revision(_svc().db, message)


# -- keys ---------------------------------------------------------------------------
@main.group()
def keys() -> None:
    """Signing keys in keys/ (published in the JWKS)."""


def _print_keys(items) -> None:
    now = time.time()
    for key in items:
        click.echo(f"{key.kid}  {key.alg}  {int((now - key.created_at) // 86400)} days old")


@keys.command("list")
def keys_list() -> None:
    _print_keys(_svc().keys.keys)


@keys.command("rotate")
@click.option("--alg", "algs", multiple=True, type=click.Choice(["RS256", "ES256"]))
def keys_rotate(algs: tuple[str, ...]) -> None:
    """Add a new signing key per algorithm; older keys stay in the JWKS."""
    added = _svc().keys.rotate(list(algs) or None)
    click.echo("added:")
    _print_keys(added)


@keys.command("prune")
@click.option("--max-age-days", type=float, default=None,
              help="default: keys_max_age_days from the configuration")
def keys_prune(max_age_days: float | None) -> None:
    """Retire keys older than the given age (the newest key per algorithm stays)."""
    days = max_age_days if max_age_days is not None else _svc().settings.keys_max_age_days
    removed = _svc().keys.prune(days * 86400)
    click.echo(f"removed {len(removed)} key(s)")
    _print_keys(removed)


# -- clients --------------------------------------------------------------------------
@main.group()
def clients() -> None:
    """Relying parties (démarche apps) and service clients."""


def _load_client(client_id: str):
    from .persistence.models import Client

    client = _svc().db.session.get(Client, client_id)
    if client is None:
        raise click.ClickException(f"no client {client_id}")
    return client


@clients.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True)
@click.option("--public", is_flag=True, help="no secret; PKCE required (auth method none)")
@click.option("--auth-method", type=click.Choice(["client_secret_basic", "client_secret_post",
                                                  "private_key_jwt", "none"]),
              default="client_secret_basic")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]))
@click.option("--scope", "scopes", multiple=True)
@click.option("--no-consent", is_flag=True, help="first-party client: no consent screen")
@click.option("--subject-type", type=click.Choice(["public", "pairwise"]), default="public")
@click.option("--sector-identifier", default=None, help="pairwise sector (default: redirect host)")
@click.option("--jwks", "jwks_source", default=None,
              help="public JWKS for private_key_jwt: a file path or inline JSON")
@click.option("--id-token-alg", type=click.Choice(["RS256", "ES256"]), default=None,
              help="signature of this client's ID tokens (default: tokens.id_token_alg)")
@click.option("--client-id", default=None, help="choose the client_id (default: random)")
@click.option("--description", default="")
@click.option("--home-url", default="")
@click.option("--no-pkce", is_flag=True,
              help="a confidential client that cannot send PKCE (old clients only)")
@click.option("--backchannel-logout-uri", default=None,
              help="where logout tokens are posted (OIDC Back-Channel Logout 1.0)")
@click.option("--frontchannel-logout-uri", default=None,
              help="the page loaded in a frame at logout (OIDC Front-Channel Logout 1.0)")
@click.option("--json", "as_json", is_flag=True)
def clients_create(name, redirect_uris, post_logout, public, auth_method, grant_types, scopes,
                   no_consent, subject_type, sector_identifier, jwks_source, id_token_alg,
                   client_id, description, home_url, no_pkce, backchannel_logout_uri,
                   frontchannel_logout_uri, as_json) -> None:
    """Register a client. The secret is printed once and never stored in clear."""
    from .admin.clients import ClientError, create_client, describe
    from .security.audit import record_event

    jwks = None
    if jwks_source:
        path = Path(jwks_source)
        jwks = json.loads(path.read_text() if path.exists() else jwks_source)
    session = _svc().db.session
    try:
        client, secret = create_client(
            session, name=name, redirect_uris=list(redirect_uris),
            post_logout_redirect_uris=list(post_logout), auth_method=auth_method,
            public=public, grant_types=list(grant_types) or None, scopes=list(scopes) or None,
            require_consent=not no_consent, subject_type=subject_type, jwks=jwks,
            client_id=client_id, description=description, home_url=home_url,
            sector_identifier=sector_identifier, id_token_signed_response_alg=id_token_alg,
            require_pkce=not no_pkce, backchannel_logout_uri=backchannel_logout_uri,
            frontchannel_logout_uri=frontchannel_logout_uri)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    record_event(session, "admin.client_created", client_id=client.client_id,
                 details=_cli_actor())
    session.commit()
    data = describe(client, secret)
    if as_json:
        click.echo(json.dumps(data))
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True)
def clients_list(as_json: bool) -> None:
    from .admin.clients import describe, list_clients

    items = [describe(c) for c in list_clients(_svc().db.session)]
    if as_json:
        click.echo(json.dumps(items))
        return
    for item in items:
        click.echo(f"{item['client_id']}  {item['name']}  {item['token_endpoint_auth_method']}")


@clients.command("show")
@click.argument("client_id")
def clients_show(client_id: str) -> None:
    from .admin.clients import describe

    click.echo(json.dumps(describe(_load_client(client_id)), indent=2))


@clients.command("delete")
@click.argument("client_id")
def clients_delete(client_id: str) -> None:
    from .admin.clients import delete_client
    from .security.audit import record_event

    session = _svc().db.session
    delete_client(session, _load_client(client_id))
    record_event(session, "admin.client_deleted", client_id=client_id, details=_cli_actor())
    session.commit()
    click.echo(f"deleted {client_id}")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
def clients_rotate_secret(client_id: str, as_json: bool) -> None:
    from .admin.clients import ClientError, rotate_secret
    from .security.audit import record_event

    session = _svc().db.session
    try:
        secret = rotate_secret(session, _load_client(client_id))
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    record_event(session, "admin.client_secret_rotated", client_id=client_id,
                 details=_cli_actor())
    session.commit()
    click.echo(json.dumps({"client_id": client_id, "client_secret": secret}) if as_json
               else f"client_secret: {secret}")


def _cli_actor() -> dict:
    """Who acted from the command line, for the audit trail: the system account."""
    import getpass

    try:
        operator = getpass.getuser()
    except (KeyError, OSError):
        operator = None
    return {"via": "cli", "operator": operator}


@clients.command("disable")
@click.argument("client_id")
def clients_disable(client_id: str) -> None:
    """Refuse the client at every endpoint (its tokens stop working) until enabled."""
    _set_client_disabled(client_id, True)


@clients.command("enable")
@click.argument("client_id")
def clients_enable(client_id: str) -> None:
    _set_client_disabled(client_id, False)


def _set_client_disabled(client_id: str, disabled: bool) -> None:
    from .security.audit import record_event

    session = _svc().db.session
    client = _load_client(client_id)
    if client.disabled != disabled:
        client.disabled = disabled
        record_event(session, "admin.client_disabled" if disabled else "admin.client_enabled",
                     client_id=client_id, details=_cli_actor())
        session.commit()
        _svc().clients.forget(client_id)  # other processes: within the cache's TTL
    click.echo(f"{client_id} {'disabled' if disabled else 'enabled'}")


# -- initial access tokens (client registration, RFC 7591) -----------------------------
@main.group("registration-tokens")
def registration_tokens() -> None:
    """Initial access tokens, which open the client registration endpoint (/register)."""


def _token_data(token) -> dict:
    from .admin.initial_tokens import state

    return {"id": token.id, "label": token.label, "state": state(token),
            "created_at": token.created_at.isoformat(), "created_by": token.created_by,
            "expires_at": token.expires_at.isoformat(), "max_uses": token.max_uses,
            "uses": token.uses}


@registration_tokens.command("create")
@click.option("--label", required=True, help="who it is for (shown to administrators)")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="validity (default: client_registration.initial_token_ttl)")
@click.option("--max-uses", type=click.IntRange(min=1), default=None,
              help="registrations it allows (default: any number while valid)")
@click.option("--json", "as_json", is_flag=True)
def registration_tokens_create(label: str, days: int | None, max_uses: int | None,
                               as_json: bool) -> None:
    """Issue a token. It is printed once and stored hashed."""
    from .admin.initial_tokens import TokenError, issue
    from .security.audit import record_event

    svc = _svc()
    settings = svc.settings.client_registration
    ttl = days * 86400 if days is not None else settings.initial_token_ttl
    if ttl > settings.initial_token_max_ttl:
        raise click.ClickException(f"at most {settings.initial_token_max_ttl // 86400} days "
                                   "(client_registration.initial_token_max_ttl)")
    session = svc.db.session
    try:
        token, value = issue(session, label=label, ttl=ttl, max_uses=max_uses)
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    record_event(session, "admin.initial_access_token_created",
                 details={**_cli_actor(), "initial_access_token_id": token.id,
                          "max_uses": max_uses, "expires_at": token.expires_at.isoformat()})
    session.commit()
    data = {**_token_data(token), "token": value,
            "registration_endpoint": f"{svc.settings.issuer}/register"}
    if as_json:
        click.echo(json.dumps(data))
    else:
        for key, value_ in data.items():
            click.echo(f"{key}: {value_}")


@registration_tokens.command("list")
@click.option("--all", "include_inactive", is_flag=True,
              help="also the expired, revoked and used up ones")
@click.option("--json", "as_json", is_flag=True)
def registration_tokens_list(include_inactive: bool, as_json: bool) -> None:
    from .admin.initial_tokens import list_tokens

    items = [_token_data(t) for t in list_tokens(_svc().db.session,
                                                 include_inactive=include_inactive)]
    if as_json:
        click.echo(json.dumps(items))
        return
    for item in items:
        uses = f"{item['uses']}/{item['max_uses']}" if item["max_uses"] else str(item["uses"])
        click.echo(f"{item['id']}  {item['state']}  uses {uses}  expires {item['expires_at']}"
                   f"  {item['label']}")


@registration_tokens.command("revoke")
@click.argument("token_id")
def registration_tokens_revoke(token_id: str) -> None:
    from .admin.initial_tokens import find, revoke
    from .security.audit import record_event

    session = _svc().db.session
    token = find(session, token_id)
    if token is None:
        raise click.ClickException(f"no initial access token {token_id}")
    if revoke(session, token):
        record_event(session, "admin.initial_access_token_revoked",
                     details={**_cli_actor(), "initial_access_token_id": token.id})
        session.commit()
    click.echo(f"revoked {token_id}")


# -- users ----------------------------------------------------------------------------
@main.group()
def users() -> None:
    """Accounts."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--given-name", required=True)
@click.option("--family-name", required=True)
@click.option("--phone", default=None)
@click.option("--admin", is_flag=True)
@click.option("--verified/--unverified", default=True, help="mark the email verified")
def users_create(email, password, given_name, family_name, phone, admin, verified) -> None:
    from .identity.users import UserError, create_user
    from .security.audit import record_event

    svc = _svc()
    phone_e164 = None
    if phone:
        try:
            from .messaging.phone import parse_phone
            phone_e164 = parse_phone(phone, svc.settings.messaging.default_region)
        except ImportError:
            phone_e164 = phone
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        user = create_user(svc.db.session, svc.passwords, email=email, password=password,
                           given_name=given_name, family_name=family_name,
                           phone_number=phone_e164, email_verified=verified, is_admin=admin,
                           terms_version=svc.settings.registration.terms_version)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    record_event(svc.db.session, "admin.user_created", user_id=user.id, details=_cli_actor())
    svc.db.session.commit()
    click.echo(json.dumps({"id": user.id, "email": user.email}))


# -- configuration ----------------------------------------------------------------------
@main.command("config")
def config_show() -> None:
    """Print the effective configuration (secrets masked)."""
    from .config import as_public_dict

    click.echo(json.dumps(as_public_dict(_svc().settings), indent=2, default=str))


@main.command("demo", with_appcontext=False)
@click.option("--port", default=5000)
@click.option("--client-port", default=5001)
@click.option("--news-port", default=5002)
def demo(port: int, client_port: int, news_port: int) -> None:
    """Run the provider, the démarche app and the news app, with a demo account."""
    from .demo import run_demo

    sys.exit(run_demo(create_app(), port, client_port, news_port))


# -- audit trail ------------------------------------------------------------------------
@main.group()
def audit() -> None:
    """The audit trail: listing and purging after the retention period."""


@audit.command("purge")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="keep this many days (default: audit.retention_days)")
def audit_purge(days: int | None) -> None:
    """Delete the events older than the retention period (run it daily, e.g. from cron)."""
    from .security.audit import purge_older_than, record_event

    svc = _svc()
    days = days if days is not None else svc.settings.audit.retention_days
    removed = purge_older_than(svc.db.session, days)
    record_event(svc.db.session, "admin.audit_purged",
                 details={**_cli_actor(), "retention_days": days, "removed": removed})
    svc.db.session.commit()
    click.echo(f"removed {removed} event(s) older than {days} day(s)")


@audit.command("list")
@click.option("--type", "type_prefix", default=None, help="events whose type starts with this")
@click.option("--user", "user", default=None, help="a user id or a login e-mail address")
@click.option("--client", "client_id", default=None)
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="UTC date or date-time")
@click.option("--until", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="UTC date or date-time (exclusive)")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def audit_list(type_prefix, user, client_id, since, until, limit, as_json) -> None:
    """Print events, newest first."""
    import datetime as dt

    from sqlalchemy import select

    from .identity.users import find_by_email
    from .persistence.models import AuditEvent

    session = _svc().db.session
    query = select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id)
    if type_prefix:
        query = query.where(AuditEvent.type.startswith(type_prefix, autoescape=True))
    if user:
        if "@" in user:
            found = find_by_email(session, user)
            user = found.id if found else "-"
        query = query.where(AuditEvent.user_id == user)
    if client_id:
        query = query.where(AuditEvent.client_id == client_id)
    if since:
        query = query.where(AuditEvent.created_at >= since.replace(tzinfo=dt.timezone.utc))
    if until:
        query = query.where(AuditEvent.created_at < until.replace(tzinfo=dt.timezone.utc))
    for event in session.scalars(query.limit(limit)):
        data = {"id": event.id, "created_at": event.created_at.isoformat(), "type": event.type,
                "outcome": event.outcome, "user_id": event.user_id,
                "client_id": event.client_id, "ip_address": event.ip_address,
                "details": event.details}
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False, default=str))
        else:
            click.echo(f"{data['created_at']}  {event.type}  {event.outcome}  "
                       f"user={event.user_id or '-'}  client={event.client_id or '-'}  "
                       f"{json.dumps(event.details or {}, ensure_ascii=False, default=str)}")


# -- subscription themes ------------------------------------------------------------
@main.group()
def themes() -> None:
    """Subscription themes ("Abonnements"), offered to users and read by publishing apps."""


@themes.command("list")
def themes_list() -> None:
    from .hub.subscriptions import themes as all_themes

    for theme in all_themes(_svc().db.session, active_only=False):
        state = "active" if theme.active else "inactive"
        click.echo(f"{theme.id}  {theme.name}  ({state}, position {theme.position})")


@themes.command("set")
@click.argument("theme_id")
@click.argument("name")
@click.option("--description", default="")
@click.option("--position", type=int, default=None, help="order in the list (default: last)")
@click.option("--inactive", is_flag=True, help="no longer offered (subscriptions are kept)")
def themes_set(theme_id: str, name: str, description: str, position: int | None,
               inactive: bool) -> None:
    """Create or change the theme THEME_ID (lower-case letters, digits, dashes)."""
    from .hub.subscriptions import save_theme
    from .security.audit import record_event

    session = _svc().db.session
    try:
        save_theme(session, theme_id, name, description, not inactive, position)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    record_event(session, "admin.theme_saved", details={"theme": theme_id, "via": "cli"})
    session.commit()
    click.echo(f"saved {theme_id}")


@main.command("purge")
def purge() -> None:
    """Delete expired flows, codes, tokens, sessions and grants (run daily)."""
    from .persistence.maintenance import purge_expired

    from .hub.lifecycle import purge_events
    from .hub.wallet import purge_expired_grants

    svc = _svc()
    counts = purge_expired(svc.db.session, svc.settings.tokens.refresh_token_ttl)
    counts["document_grants"] = purge_expired_grants(svc.db.session)
    counts["hub_events"] = purge_events(svc.db.session, svc.settings.hub.events_retention_days)
    svc.db.session.commit()
    click.echo(json.dumps(counts))


# -- logout propagation ------------------------------------------------------------------
@main.group()
def logout() -> None:
    """Back-channel logout: telling clients that a session has ended."""


@logout.command("deliver")
def logout_deliver() -> None:
    """One pass: end expired sessions, queue and send the logout tokens that are due
    (for a timer when session.logout_propagation_interval is 0)."""
    from .oidc.logout_propagation import propagate

    click.echo(json.dumps(propagate(_svc())))

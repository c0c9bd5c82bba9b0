"""``idp demo``: the provider and two démarche apps side by side, with a demo account.

Idempotent: every start migrates the schema, registers (or updates) the clients
``demarches-demo`` (the démarche app, ``clients/demarches``) and ``actualites-demo``
(the news app, ``clients/actualites``) with fresh secrets, makes sure the subscription
themes exist, and creates (or resets) ``demo@example.org`` with a fresh random password.
The apps run as subprocesses and only talk to the provider over HTTP.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import delete
from werkzeug.serving import run_simple

from .admin.clients import create_client, rotate_secret
from .config import PROJECT_ROOT
from .hub.subscriptions import ensure_default_themes
from .identity.users import create_user, find_by_email
from .messaging.phone import parse_phone
from .persistence.migrate import ensure_schema
from .persistence.models import Client, Consent, utcnow
from .security.audit import record_event

CLIENT_ID = "demarches-demo"
CLIENT_NAME = "Démarches en ligne de {organisation} (démonstration)"
NEWS_CLIENT_ID = "actualites-demo"
NEWS_CLIENT_NAME = "Actualités de {organisation} (démonstration)"
DEMO_EMAIL = "demo@example.org"
DEMO_PROFILE = {
    "given_name": "Camille", "family_name": "Martin", "phone": "+33 6 12 34 56 78",
    "street_address": "12 rue de la République", "postal_code": "69002",
    "locality": "Lyon", "country": "France",
}
# A deployment in New Caledonia (default_region NC) gets a citizen of Nouméa, whose
# address takes three lines.
DEMO_PROFILES_BY_REGION = {"NC": {
    **DEMO_PROFILE, "phone": "71 22 33",
    "street_address": "12 rue Jean Jaurès\nQuartier Latin\nBP 1234", "postal_code": "98800",
    "locality": "Nouméa", "country": "Nouvelle-Calédonie",
}}
# No look-alike characters: the password is read on a terminal and typed by hand.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class DemoApp:
    client_id: str
    name: str
    description: str
    module: str  # python -m <module>
    env_prefix: str
    paths: tuple[str, ...]  # redirect URIs, below the app's base URL
    scopes: tuple[str, ...]


DEMARCHES = DemoApp(
    CLIENT_ID, CLIENT_NAME,
    "Demande d'aide au logement, aide aux études supérieures (clients/demarches)",
    "clients.demarches", "DEMARCHES_", ("/callback", "/porte-documents/retour"),
    ("openid", "profile", "email", "phone", "address", "relations", "offline_access",
     "requests:write", "notifications:write", "documents:read", "events:read"))
ACTUALITES = DemoApp(
    NEWS_CLIENT_ID, NEWS_CLIENT_NAME,
    "Les nouvelles de {organisation}, par thème (clients/actualites)",
    "clients.actualites", "ACTUALITES_", ("/callback",),
    ("openid", "profile", "email", "subscriptions:read"))


def demo_password() -> str:
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4))
                    for _ in range(4))


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def register_app(svc, app: DemoApp, port: int) -> str:
    """Create or update a demo client (confidential, pairwise subjects, the API scopes
    of its app); returns its new secret."""
    session = svc.db.session
    base = f"http://127.0.0.1:{port}"
    organisation = svc.settings.organisation_name
    name = app.name.format(organisation=organisation)
    description = app.description.format(organisation=organisation)
    redirect_uris, post_logout = [base + p for p in app.paths], [f"{base}/"]
    grant_types = ["authorization_code", "refresh_token", "client_credentials"]
    client = session.get(Client, app.client_id)
    if client is None:
        client, secret = create_client(
            session, name=name, client_id=app.client_id, redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout, auth_method="client_secret_basic",
            require_consent=True, home_url=base + "/", description=description,
            grant_types=grant_types, scopes=list(app.scopes), subject_type="pairwise",
            backchannel_logout_uri=f"{base}/backchannel-logout")
        record_event(session, "admin.client_created", client_id=app.client_id,
                     details={"via": "demo"})
    else:
        client.name = name
        client.description = description
        client.redirect_uris = redirect_uris
        client.post_logout_redirect_uris = post_logout
        client.home_url = base + "/"
        client.require_consent = True
        client.token_endpoint_auth_method = "client_secret_basic"
        client.grant_types = grant_types
        client.response_types = ["code"]
        client.scope = " ".join(app.scopes)
        client.subject_type = "pairwise"
        client.backchannel_logout_uri = f"{base}/backchannel-logout"
        secret = rotate_secret(session, client)
        record_event(session, "admin.client_secret_rotated", client_id=app.client_id,
                     details={"via": "demo"})
    ensure_default_themes(session)
    session.commit()
    return secret


def register_client(svc, client_port: int) -> str:
    """The démarche app's client; returns its new secret."""
    return register_app(svc, DEMARCHES, client_port)


def reset_demo_user(svc) -> str:
    """Create or reset the demo account; returns its new password."""
    session, settings = svc.db.session, svc.settings
    password = demo_password()
    profile = dict(DEMO_PROFILES_BY_REGION.get(settings.messaging.default_region.upper(),
                                               DEMO_PROFILE))
    phone = parse_phone(profile.pop("phone"), settings.messaging.default_region)
    user = find_by_email(session, DEMO_EMAIL)
    if user is None:
        user = create_user(session, svc.passwords, email=DEMO_EMAIL, password=password,
                           given_name=profile["given_name"],
                           family_name=profile["family_name"], phone_number=phone,
                           email_verified=True,
                           terms_version=settings.registration.terms_version)
        record_event(session, "admin.user_created", user_id=user.id, details={"via": "demo"})
    else:
        user.password_hash = svc.passwords.hash(password)
        user.password_changed_at = utcnow()
        user.phone_number = phone
        user.email_verified = True
        user.disabled = False
        record_event(session, "admin.user_password_reset", user_id=user.id,
                     details={"via": "demo"})
    for key, value in profile.items():
        setattr(user, key, value)
    user.phone_number_verified = True
    # Show the consent screens again at every demo start.
    session.execute(delete(Consent).where(Consent.user_id == user.id,
                                          Consent.client_id.in_((CLIENT_ID, NEWS_CLIENT_ID))))
    session.commit()
    return password


def _banner(issuer: str, urls: dict[str, str], password: str, agent: str, editor: str,
            outbox: str) -> str:
    line = "=" * 76
    return "\n".join([
        line,
        "  compte-usager: demo",
        "",
        f"  Démarche app        : {urls['demarches']}/   <- start here",
        f"    agent view        : {urls['demarches']}/agent   (user agent, password {agent})",
        f"  News app            : {urls['actualites']}/",
        f"    editors           : {urls['actualites']}/redaction   "
        f"(user redaction, password {editor})",
        f"  Identity provider   : {issuer}/   (Mon compte: {issuer}/compte/)",
        f"  API reference       : {issuer}/api/openapi.json   (docs/api.md)",
        "",
        f"  Demo account        : {DEMO_EMAIL}",
        f"  Password            : {password}   (new at every start)",
        "",
        f"  Outbox (e-mails and SMS are written here, not sent): {outbox}",
        "  The apps write theirs under instance/demarches-outbox and instance/actualites-outbox.",
        "  Stop with Ctrl-C.",
        line,
    ])


def _wait_until_serving(process: subprocess.Popen, port: int, timeout: float = 20) -> bool:
    """True once the subprocess accepts connections on ``port``; False if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def app_environment(app: DemoApp, issuer: str, port: int, secret: str, **extra: str
                    ) -> dict[str, str]:
    prefix = app.env_prefix
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    env.update({prefix + "ISSUER": issuer, prefix + "CLIENT_ID": app.client_id,
                prefix + "CLIENT_SECRET": secret,
                prefix + "BASE_URL": f"http://127.0.0.1:{port}",
                prefix + "SECRET_KEY": secrets.token_urlsafe(32)})
    env.update({prefix + k: v for k, v in extra.items()})
    return env


def demarches_region(default_region: str) -> str:
    """The sample démarche app knows France and New Caledonia; other regions get France."""
    return "NC" if default_region.upper() == "NC" else "FR"


def run_demo(app: Flask, port: int, client_port: int, news_port: int | None = None) -> int:
    news_port = news_port or client_port + 1
    svc = app.extensions["idp"]
    settings = svc.settings
    expected = f"http://127.0.0.1:{port}"
    if settings.issuer != expected:
        print(f"error: the provider's issuer is {settings.issuer!r}, but the demo serves it "
              f"on {expected}.\nBrowsers and the sample app would be sent to the wrong "
              f"address. Run it as:\n\n    IDP_ISSUER={expected} idp demo --port {port}\n",
              file=sys.stderr)
        return 2
    if len({port, client_port, news_port}) != 3:
        print("error: --port, --client-port and --news-port must differ", file=sys.stderr)
        return 2
    for wanted in (port, client_port, news_port):
        if not _port_free(wanted):
            print(f"error: port {wanted} on 127.0.0.1 is in use (another demo running?). "
                  "Stop it, or choose other ports with --port / --client-port / --news-port "
                  "(and IDP_ISSUER).", file=sys.stderr)
            return 1

    ensure_schema(svc.db)
    with app.app_context():
        secrets_by_app = {DEMARCHES: register_app(svc, DEMARCHES, client_port),
                          ACTUALITES: register_app(svc, ACTUALITES, news_port)}
        password = reset_demo_user(svc)
    svc.db.remove()

    agent, editor = demo_password(), demo_password()
    ports = {DEMARCHES: client_port, ACTUALITES: news_port}
    # The apps speak of the same organisation, and the démarche app of its territory
    # (New Caledonia: numbers typed "71 22 33", amounts in XPF).
    territory = {"ORGANISATION": settings.organisation_name}
    extras = {DEMARCHES: {"AGENT_PASSWORD": agent, **territory,
                          "REGION": demarches_region(settings.messaging.default_region)},
              ACTUALITES: {"EDITOR_PASSWORD": editor, **territory}}
    processes = []
    # SIGTERM (kill, a service manager, a test) stops the demo like Ctrl-C does, so that
    # the apps are never left behind.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    # The apps keep their databases and outboxes under instance/, which a clean clone lacks.
    (PROJECT_ROOT / "instance").mkdir(exist_ok=True)
    try:
        for demo_app, secret in secrets_by_app.items():
            env = app_environment(demo_app, settings.issuer, ports[demo_app], secret,
                                  **extras[demo_app])
            process = subprocess.Popen([sys.executable, "-m", demo_app.module], env=env,
                                       cwd=str(PROJECT_ROOT))
            processes.append(process)
            if not _wait_until_serving(process, ports[demo_app]):
                print(f"error: {demo_app.module} did not start (see its messages above)",
                      file=sys.stderr)
                return 1
        urls = {"demarches": f"http://127.0.0.1:{client_port}",
                "actualites": f"http://127.0.0.1:{news_port}"}
        print(_banner(settings.issuer, urls, password, agent, editor,
                      str(settings.resolve_path(settings.messaging.outbox_dir))), flush=True)
        run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in processes:
            _stop(process)
    print("demo stopped")
    return 0

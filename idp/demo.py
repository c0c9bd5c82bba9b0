"""``idp demo``: the provider and the sample démarche app side by side, with a demo account.

Idempotent: every start migrates the schema, registers (or updates) the client
``demarches-demo`` with a fresh secret, and creates (or resets) ``demo@example.org`` with
a fresh random password. The sample app (``clients/demarches``) runs as a subprocess
and only talks to the provider over HTTP.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time

from flask import Flask
from sqlalchemy import delete
from werkzeug.serving import run_simple

from .admin.clients import create_client, rotate_secret
from .config import PROJECT_ROOT
from .identity.users import create_user, find_by_email
from .messaging.phone import parse_phone
from .persistence.migrate import ensure_schema
from .persistence.models import Client, Consent, utcnow
from .security.audit import record_event

CLIENT_ID = "demarches-demo"
CLIENT_NAME = "Demande d'aide au logement (démonstration)"
DEMO_EMAIL = "demo@example.org"
DEMO_PROFILE = {
    "given_name": "Camille", "family_name": "Martin", "phone": "+33 6 12 34 56 78",
    "street_address": "12 rue de la République", "postal_code": "69002",
    "locality": "Lyon", "country": "France",
}
# No look-alike characters: the password is read on a terminal and typed by hand.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


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


def register_client(svc, client_port: int) -> str:
    """Create or update the demo client; returns its new secret."""
    session = svc.db.session
    base = f"http://127.0.0.1:{client_port}"
    redirect_uris, post_logout = [f"{base}/callback"], [f"{base}/"]
    client = session.get(Client, CLIENT_ID)
    if client is None:
        client, secret = create_client(
            session, name=CLIENT_NAME, client_id=CLIENT_ID, redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout, auth_method="client_secret_basic",
            require_consent=True, home_url=base + "/",
            description="Application de démonstration (clients/demarches)")
        record_event(session, "admin.client_created", client_id=CLIENT_ID,
                     details={"via": "demo"})
    else:
        client.name = CLIENT_NAME
        client.redirect_uris = redirect_uris
        client.post_logout_redirect_uris = post_logout
        client.home_url = base + "/"
        client.require_consent = True
        client.token_endpoint_auth_method = "client_secret_basic"
        client.grant_types = ["authorization_code", "refresh_token"]
        client.response_types = ["code"]
        client.scope = "openid profile email phone address offline_access"
        secret = rotate_secret(session, client)
        record_event(session, "admin.client_secret_rotated", client_id=CLIENT_ID,
                     details={"via": "demo"})
    session.commit()
    return secret


def reset_demo_user(svc) -> str:
    """Create or reset the demo account; returns its new password."""
    session, settings = svc.db.session, svc.settings
    password = demo_password()
    profile = dict(DEMO_PROFILE)
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
    # Show the consent screen again at every demo start.
    session.execute(delete(Consent).where(Consent.user_id == user.id,
                                          Consent.client_id == CLIENT_ID))
    session.commit()
    return password


def _banner(issuer: str, app_url: str, password: str, outbox: str) -> str:
    line = "=" * 72
    return "\n".join([
        line,
        "  compte-usager: demo",
        "",
        f"  Sample démarche app : {app_url}/   <- start here",
        f"  Identity provider   : {issuer}/",
        "",
        f"  Demo account        : {DEMO_EMAIL}",
        f"  Password            : {password}   (new at every start)",
        "",
        f"  Outbox (e-mails and SMS are written here, not sent): {outbox}",
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


def run_demo(app: Flask, port: int, client_port: int) -> int:
    svc = app.extensions["idp"]
    settings = svc.settings
    expected = f"http://127.0.0.1:{port}"
    if settings.issuer != expected:
        print(f"error: the provider's issuer is {settings.issuer!r}, but the demo serves it "
              f"on {expected}.\nBrowsers and the sample app would be sent to the wrong "
              f"address. Run it as:\n\n    IDP_ISSUER={expected} idp demo --port {port}\n",
              file=sys.stderr)
        return 2
    if port == client_port:
        print("error: --port and --client-port must differ", file=sys.stderr)
        return 2
    for wanted in (port, client_port):
        if not _port_free(wanted):
            print(f"error: port {wanted} on 127.0.0.1 is in use (another demo running?). "
                  "Stop it, or choose other ports with --port / --client-port "
                  "(and IDP_ISSUER).", file=sys.stderr)
            return 1

    ensure_schema(svc.db)
    with app.app_context():
        secret = register_client(svc, client_port)
        password = reset_demo_user(svc)
    svc.db.remove()

    app_url = f"http://127.0.0.1:{client_port}"
    env = dict(os.environ, DEMARCHES_ISSUER=settings.issuer, DEMARCHES_CLIENT_ID=CLIENT_ID,
               DEMARCHES_CLIENT_SECRET=secret, DEMARCHES_BASE_URL=app_url,
               DEMARCHES_SECRET_KEY=secrets.token_urlsafe(32))
    process = subprocess.Popen([sys.executable, "-m", "clients.demarches"], env=env,
                               cwd=str(PROJECT_ROOT))
    # SIGTERM (kill, a service manager, a test) stops the demo like Ctrl-C does, so that
    # the sample app is never left behind.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not _wait_until_serving(process, client_port):
            print("error: the sample app did not start (see its messages above)",
                  file=sys.stderr)
            return 1
        print(_banner(settings.issuer, app_url, password,
                      str(settings.resolve_path(settings.messaging.outbox_dir))), flush=True)
        run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(process)
    print("demo stopped")
    return 0

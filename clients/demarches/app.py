"""« Demande d'aide au logement »: a sample démarche signing citizens in with compte-usager.

A confidential OpenID Connect relying party built on Authlib's Flask client:

- discovery from ``DEMARCHES_ISSUER + "/.well-known/openid-configuration"``;
- authorization code flow with PKCE (S256), ``state`` and ``nonce`` (Authlib), the
  ``iss`` authorization response parameter checked (RFC 9207);
- ID token validated by Authlib (signature against the JWKS, iss, aud, nonce, exp,
  at_hash), then the userinfo endpoint (its ``sub`` must match the ID token's);
- a démarche form prefilled from the claims;
- refresh with rotation ("Actualiser mes informations", thanks to offline_access);
- RP-initiated logout through ``end_session_endpoint`` with ``id_token_hint``,
  ``post_logout_redirect_uri`` and a ``state`` checked on return.

Tokens never reach the browser: the session cookie (``demarches_session``, distinct from
the provider's ``idp_session`` because cookies are shared across ports of one host)
holds only a random key into a server-side store. The store here is in memory, which
suits one process; a real service would use its database or Redis.

This module must not import ``idp``: it talks to the provider over HTTP only.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, abort, flash, redirect, render_template, request, session, url_for
from joserfc.errors import JoseError

log = logging.getLogger("demarches")

SCOPE = "openid profile email phone address offline_access"
PROVIDER = "compte_usager"
LOGIN_LIFETIME = 12 * 3600
HTTP_TIMEOUT = 10

CALLBACK_ERRORS = {
    "access_denied": ("Accès refusé",
                      "Vous n'avez pas autorisé ce service à utiliser les informations de "
                      "votre compte usager. Vous pouvez recommencer quand vous le souhaitez."),
    "login_required": ("Connexion nécessaire", "Connectez-vous pour continuer."),
    "consent_required": ("Autorisation nécessaire",
                         "Ce service a besoin de votre accord pour lire vos informations."),
    "interaction_required": ("Connexion nécessaire",
                             "Une vérification supplémentaire est nécessaire. Recommencez."),
    "temporarily_unavailable": ("Service momentanément indisponible",
                                "Le service de connexion est momentanément indisponible. "
                                "Réessayez dans quelques minutes."),
    "server_error": ("Service momentanément indisponible",
                     "Le service de connexion a rencontré une erreur. "
                     "Réessayez dans quelques minutes."),
}


# -- server-side store of signed-in users ---------------------------------------------
@dataclass
class Login:
    token: dict[str, Any]
    id_claims: dict[str, Any]
    userinfo: dict[str, Any]
    created_at: float = field(default_factory=time.time)


class LoginStore:
    """Signed-in users by random key, in memory (one process), with an absolute lifetime."""

    def __init__(self, lifetime: int = LOGIN_LIFETIME) -> None:
        self._items: dict[str, Login] = {}
        self._lock = threading.Lock()
        self._lifetime = lifetime

    def add(self, login: Login) -> str:
        key = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            for stale in [k for k, v in self._items.items()
                          if now - v.created_at > self._lifetime]:
                del self._items[stale]
            self._items[key] = login
        return key

    def get(self, key: str | None) -> Login | None:
        if not key:
            return None
        with self._lock:
            login = self._items.get(key)
            if login and time.time() - login.created_at > self._lifetime:
                del self._items[key]
                return None
            return login

    def remove(self, key: str | None) -> Login | None:
        with self._lock:
            return self._items.pop(key, None) if key else None


# -- the démarche form -----------------------------------------------------------------
FIELDS = {
    "prenom": "Prénom", "nom": "Nom", "email": "Adresse e-mail", "telephone": "Téléphone",
    "adresse": "Adresse", "code_postal": "Code postal", "commune": "Commune",
    "situation": "Votre situation", "personnes": "Nombre de personnes dans le logement",
    "loyer": "Loyer mensuel, charges comprises (en euros)",
}
SITUATIONS = {"locataire": "Locataire", "colocataire": "Colocataire",
              "foyer": "Résident d'un foyer ou d'une résidence"}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")
POSTAL_RE = re.compile(r"^\d{5}$")


def format_phone(e164: str | None) -> str:
    """``+33612345678`` → ``06 12 34 56 78``; other numbers are left as they are."""
    if not e164:
        return ""
    if re.fullmatch(r"\+33\d{9}", e164):
        digits = "0" + e164[3:]
        return " ".join(digits[i:i + 2] for i in range(0, 10, 2))
    return e164


def prefill(userinfo: dict[str, Any]) -> dict[str, str]:
    address = userinfo.get("address") or {}
    return {
        "prenom": userinfo.get("given_name") or "", "nom": userinfo.get("family_name") or "",
        "email": userinfo.get("email") or "",
        "telephone": format_phone(userinfo.get("phone_number")),
        "adresse": address.get("street_address") or "",
        "code_postal": address.get("postal_code") or "",
        "commune": address.get("locality") or "",
        "situation": "", "personnes": "", "loyer": "",
    }


def validate_demarche(form) -> tuple[dict[str, str], dict[str, str]]:
    """(values, errors by field), French messages."""
    values = {name: (form.get(name) or "").strip()[:300] for name in FIELDS}
    errors: dict[str, str] = {}
    for name in ("prenom", "nom", "email", "adresse", "code_postal", "commune"):
        if not values[name]:
            errors[name] = f"Renseignez le champ « {FIELDS[name]} »."
    if values["email"] and not EMAIL_RE.match(values["email"]):
        errors["email"] = "Saisissez une adresse e-mail valide, par exemple nom@exemple.fr."
    if values["code_postal"] and not POSTAL_RE.match(values["code_postal"]):
        errors["code_postal"] = "Le code postal compte 5 chiffres, par exemple 75001."
    if values["situation"] not in SITUATIONS:
        errors["situation"] = "Choisissez votre situation."
    if not values["personnes"].isdigit() or not 1 <= int(values["personnes"]) <= 20:
        errors["personnes"] = "Indiquez un nombre de personnes entre 1 et 20."
    try:
        rent = float(values["loyer"].replace(",", ".").replace(" ", ""))
        if not 0 < rent < 100_000:
            raise ValueError
    except ValueError:
        errors["loyer"] = "Indiquez le montant du loyer en euros, par exemple 540."
    return values, errors


# -- the application ------------------------------------------------------------------
def _settings(overrides: dict[str, Any] | None) -> dict[str, Any]:
    env = os.environ
    config = {
        "DEMARCHES_ISSUER": env.get("DEMARCHES_ISSUER", "http://127.0.0.1:5000"),
        "DEMARCHES_CLIENT_ID": env.get("DEMARCHES_CLIENT_ID", ""),
        "DEMARCHES_CLIENT_SECRET": env.get("DEMARCHES_CLIENT_SECRET", ""),
        "DEMARCHES_BASE_URL": env.get("DEMARCHES_BASE_URL", "http://127.0.0.1:5001"),
        "SECRET_KEY": env.get("DEMARCHES_SECRET_KEY", ""),
    }
    config.update(overrides or {})
    config["DEMARCHES_ISSUER"] = config["DEMARCHES_ISSUER"].rstrip("/")
    config["DEMARCHES_BASE_URL"] = config["DEMARCHES_BASE_URL"].rstrip("/")
    if not config["DEMARCHES_CLIENT_ID"] or not config["DEMARCHES_CLIENT_SECRET"]:
        raise RuntimeError("DEMARCHES_CLIENT_ID and DEMARCHES_CLIENT_SECRET are required "
                           "(register the app with `idp clients create`)")
    if not config["SECRET_KEY"]:
        log.warning("DEMARCHES_SECRET_KEY is not set: sessions end when the app restarts")
        config["SECRET_KEY"] = secrets.token_urlsafe(32)
    return config


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    settings = _settings(config)
    issuer, base_url = settings["DEMARCHES_ISSUER"], settings["DEMARCHES_BASE_URL"]
    insecure = [u for u in (issuer, base_url) if not u.startswith("https://")]
    for url in insecure:
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError(f"{url}: https is required outside of localhost")
    if insecure:
        # Authlib refuses plain http unless told; only local demos and tests get here.
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

    app = Flask(__name__)
    app.config.update(settings)
    app.config.update(
        SESSION_COOKIE_NAME="demarches_session",
        SESSION_COOKIE_HTTPONLY=True,
        # Lax: the cookie must come along on the provider's redirect back to /callback.
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=LOGIN_LIFETIME,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    logins = LoginStore()
    app.extensions["demarches_logins"] = logins

    oauth = OAuth(app)
    provider = oauth.register(
        PROVIDER,
        client_id=settings["DEMARCHES_CLIENT_ID"],
        client_secret=settings["DEMARCHES_CLIENT_SECRET"],
        server_metadata_url=issuer + "/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "client_secret_basic",
                       "timeout": HTTP_TIMEOUT},
    )
    csp = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
           f"form-action 'self' {_origin(issuer)}; frame-ancestors 'none'; "
           "base-uri 'none'; object-src 'none'")

    # -- helpers -----------------------------------------------------------------
    def current_login() -> Login | None:
        return logins.get(session.get("login"))

    def csrf_token() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        return session["csrf"]

    def check_csrf() -> None:
        sent = request.form.get("csrf_token", "")
        if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
            abort(400, "csrf")

    def error_page(title: str, message: str, status: int = 400):
        return render_template("error.html", title=title, message=message), status

    def sign_in_again(message: str):
        logins.remove(session.pop("login", None))
        flash(message, "error")
        return redirect(url_for("home"))

    @app.context_processor
    def _globals():
        return {"csrf_token": csrf_token, "current_login": current_login,
                "issuer": issuer, "format_phone": format_phone}

    @app.after_request
    def _headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        # The callback URL carries the code: never send it anywhere as a Referer.
        headers.setdefault("Referrer-Policy", "no-referrer")
        if request.endpoint != "static":
            headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(400)
    def _bad_request(error):
        if getattr(error, "description", "") == "csrf":
            return error_page("Formulaire expiré", "Ce formulaire a expiré. Rechargez la "
                              "page et recommencez.")
        return error_page("Requête invalide", "La requête n'a pas pu être traitée.")

    @app.errorhandler(404)
    def _not_found(_error):
        return error_page("Page introuvable", "Cette page n'existe pas.", 404)

    @app.errorhandler(requests.RequestException)
    def _provider_down(error):
        log.warning("provider unreachable: %s", error)
        return error_page("Service de connexion indisponible",
                          "Le service de connexion ne répond pas. Réessayez dans quelques "
                          "minutes.", 502)

    # -- pages -------------------------------------------------------------------
    @app.get("/")
    def home():
        if "state" in request.args:
            # Back from the provider's end_session_endpoint (post_logout_redirect_uri).
            try:
                provider.validate_logout_response()
                flash("Vous êtes déconnecté de ce service et de votre compte usager.", "ok")
            except OAuthError:
                flash("Le retour de déconnexion n'a pas été reconnu : vous êtes déconnecté "
                      "de ce service, mais vérifiez votre session sur le compte usager.",
                      "error")
            return redirect(url_for("home"))
        if current_login():
            return redirect(url_for("demarche"))
        return render_template("home.html")

    @app.get("/connexion")
    def login():
        return provider.authorize_redirect(base_url + url_for("callback"))

    @app.get("/callback")
    def callback():
        metadata = provider.load_server_metadata()
        state = request.args.get("state")
        # RFC 9207: the response must say it comes from our provider (mix-up attacks).
        iss = request.args.get("iss")
        iss_required = metadata.get("authorization_response_iss_parameter_supported")
        if (iss is not None or iss_required) and iss != metadata["issuer"]:
            if state:
                provider.framework.clear_state_data(session, state)
            log.warning("authorization response with iss=%r, expected %r", iss,
                        metadata["issuer"])
            return error_page("Connexion refusée",
                              "La réponse ne vient pas du service de connexion attendu. "
                              "Recommencez la connexion depuis ce site.")
        error = request.args.get("error")
        if error:
            known = state and provider.framework.get_state_data(session, state) is not None
            if state:
                provider.framework.clear_state_data(session, state)
            if not known:
                return error_page("Demande de connexion inconnue",
                                  "Cette demande de connexion a expiré ou ne vient pas de ce "
                                  "site. Recommencez la connexion.")
            title, message = CALLBACK_ERRORS.get(error, (
                "Connexion interrompue",
                f"La connexion n'a pas abouti (code : {error[:40]}). Recommencez."))
            return error_page(title, message, 403 if error == "access_denied" else 400)
        try:
            token = provider.authorize_access_token()
        except MismatchingStateError:
            return error_page("Demande de connexion expirée",
                              "Cette demande de connexion a expiré ou a déjà été utilisée. "
                              "Recommencez la connexion.")
        except OAuthError as exc:
            log.warning("token request failed: %s", exc)
            return error_page("Connexion interrompue",
                              "La connexion n'a pas pu être terminée. Recommencez.")
        except JoseError as exc:  # the ID token failed validation (signature, claims)
            log.warning("ID token rejected: %r", exc)
            return error_page("Connexion refusée",
                              "La réponse du service de connexion n'a pas pu être vérifiée. "
                              "Recommencez la connexion.")
        id_claims = dict(token.pop("userinfo", None) or {})
        if not id_claims.get("sub"):
            return error_page("Connexion refusée", "Aucun jeton d'identité n'a été reçu.")
        userinfo = dict(provider.userinfo(token=token))
        if userinfo.get("sub") != id_claims["sub"]:  # OIDC Core §5.3.2
            return error_page("Connexion refusée",
                              "Les informations reçues ne correspondent pas à la personne "
                              "connectée.")
        logins.remove(session.get("login"))
        session.clear()  # a new session for a new login (no fixation)
        session["login"] = logins.add(Login(token=dict(token), id_claims=id_claims,
                                            userinfo=userinfo))
        return redirect(url_for("demarche"))

    @app.route("/demarche", methods=["GET", "POST"])
    def demarche():
        current = current_login()
        if current is None:
            flash("Connectez-vous pour faire votre demande.", "error")
            return redirect(url_for("home"))
        if request.method == "POST":
            check_csrf()
            values, errors = validate_demarche(request.form)
            if not errors:
                reference = "AL-" + secrets.token_hex(4).upper()
                return render_template("confirmation.html", values=values,
                                       reference=reference, fields=FIELDS,
                                       situations=SITUATIONS)
            status = 400
        else:
            values, errors, status = prefill(current.userinfo), {}, 200
        auth_time = current.id_claims.get("auth_time")
        return render_template(
            "demarche.html", login=current, values=values, errors=errors, fields=FIELDS,
            situations=SITUATIONS,
            auth_time=datetime.fromtimestamp(auth_time, timezone.utc).astimezone()
            if isinstance(auth_time, int) else None), status

    @app.post("/actualiser")
    def refresh():
        """Refresh the tokens (rotation) and read userinfo again."""
        check_csrf()
        current = current_login()
        if current is None:
            return redirect(url_for("home"))
        refresh_token = current.token.get("refresh_token")
        if not refresh_token:
            return sign_in_again("Reconnectez-vous pour mettre à jour vos informations.")
        try:
            token = provider.fetch_access_token(grant_type="refresh_token",
                                                refresh_token=refresh_token)
            userinfo = dict(provider.userinfo(token=token))
        except (OAuthError, requests.HTTPError) as exc:
            log.info("refresh failed: %s", exc)
            return sign_in_again("Votre accès a expiré : reconnectez-vous.")
        if userinfo.get("sub") != current.id_claims["sub"]:
            return sign_in_again("Reconnectez-vous.")
        # Keep the ID token validated at sign-in: it is the id_token_hint for logout.
        token["id_token"] = current.token.get("id_token")
        current.token, current.userinfo = dict(token), userinfo
        flash("Vos informations ont été mises à jour depuis votre compte usager.", "ok")
        return redirect(url_for("demarche"))

    @app.post("/deconnexion")
    def logout():
        check_csrf()
        current = logins.remove(session.pop("login", None))
        session.clear()
        if current is None or not current.token.get("id_token"):
            return redirect(url_for("home"))
        return provider.logout_redirect(post_logout_redirect_uri=base_url + "/",
                                        id_token_hint=current.token["id_token"])

    return app

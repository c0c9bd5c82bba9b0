"""Sign-in with the provider (OpenID Connect, Authlib's Flask client), the server-side
store of signed-in users, CSRF tokens and security headers, shared by the sample apps.

- discovery from ``ISSUER + "/.well-known/openid-configuration"``;
- authorization code flow with PKCE (S256), ``state`` and ``nonce`` (Authlib), the
  ``iss`` authorization response parameter checked (RFC 9207);
- ID token validated by Authlib (signature against the JWKS, iss, aud, nonce, exp,
  at_hash), then the userinfo endpoint (its ``sub`` must match the ID token's);
- refresh with rotation, RP-initiated logout (``id_token_hint``,
  ``post_logout_redirect_uri``, ``state`` checked on return);
- back-channel logout (OIDC Back-Channel Logout 1.0, ``/backchannel-logout``): a logout
  token from the provider ends the local sessions of its ``sid``.

Tokens never reach the browser: the session cookie holds only a random key into a
server-side store (in memory: one process).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import (Blueprint, Flask, Response, abort, current_app, flash, redirect,
                   render_template, request, send_from_directory, session, url_for)
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .settings import origin, without_article

log = logging.getLogger(__name__)
ACCESS_WITHDRAWN = ("Votre autorisation n'est plus valable : elle a expiré ou a été retirée "
                    "depuis votre compte usager. Reconnectez-vous pour continuer.")
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


@dataclass
class Login:
    token: dict[str, Any]
    id_claims: dict[str, Any]
    userinfo: dict[str, Any]
    created_at: float = field(default_factory=time.time)

    @property
    def sub(self) -> str:
        return self.id_claims["sub"]


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

    def end_session(self, sid: str | None, sub: str | None) -> int:
        """Drop the logins of the provider's session ``sid`` (or, without one, of the
        user ``sub``); the number dropped."""
        with self._lock:
            gone = [key for key, login in self._items.items()
                    if (sid and login.id_claims.get("sid") == sid)
                    or (not sid and sub and login.sub == sub)]
            for key in gone:
                del self._items[key]
            return len(gone)


BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE = 300


class LogoutTokenError(ValueError):
    pass


def verify_logout_token(raw: str, jwks: dict, issuer: str, client_id: str,
                        seen_jtis: set[str]) -> dict[str, Any]:
    """The claims of a valid logout token (Back-Channel Logout 1.0 §2.6), or
    ``LogoutTokenError``."""
    try:
        token = jwt.decode(raw, KeySet.import_key_set(jwks))
    except (JoseError, ValueError, TypeError) as exc:
        raise LogoutTokenError("signature") from exc
    claims, now = token.claims, time.time()
    aud = claims.get("aud")
    if token.header.get("typ") not in (None, "logout+jwt") \
            or claims.get("iss") != issuer \
            or client_id not in (aud if isinstance(aud, list) else [aud]) \
            or not isinstance(claims.get("iat"), int) \
            or abs(now - claims["iat"]) > LOGOUT_TOKEN_MAX_AGE \
            or not isinstance(claims.get("exp"), int) or claims["exp"] < now \
            or BACKCHANNEL_EVENT not in (claims.get("events") or {}) \
            or "nonce" in claims or not (claims.get("sid") or claims.get("sub")) \
            or not claims.get("jti") or claims["jti"] in seen_jtis:
        raise LogoutTokenError("claims")
    seen_jtis.add(claims["jti"])
    return claims


def current_login() -> Login | None:
    return current_app.extensions["signin_logins"].get(session.get("login"))


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


def safe_next(value: str | None) -> str | None:
    """A path of this app to go back to after sign-in (never another site)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return None


def setup(app: Flask, settings: dict[str, Any], scope: str, *, cookie: str,
          after_login: str, max_upload: int = 64 * 1024) -> Any:
    """Sessions, headers, error pages and the sign-in routes (``/connexion``,
    ``/callback``, ``/actualiser``, ``/deconnexion``) of an app; returns Authlib's
    registered provider client."""
    issuer, base_url = settings["ISSUER"], settings["BASE_URL"]
    app.config.update(settings)
    app.config.update(
        SESSION_COOKIE_NAME=cookie,  # distinct from the provider's (cookies ignore ports)
        SESSION_COOKIE_HTTPONLY=True,
        # Lax: the cookie must come along on the provider's redirect back to /callback.
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=LOGIN_LIFETIME,
        MAX_CONTENT_LENGTH=max_upload,
    )
    logins = LoginStore()
    app.extensions["signin_logins"] = logins
    oauth = OAuth(app)
    provider = oauth.register(
        PROVIDER, client_id=settings["CLIENT_ID"], client_secret=settings["CLIENT_SECRET"],
        server_metadata_url=issuer + "/.well-known/openid-configuration",
        client_kwargs={"scope": scope, "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "client_secret_basic",
                       "timeout": HTTP_TIMEOUT})
    csp = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
           f"form-action 'self' {origin(issuer)}; frame-ancestors 'none'; "
           "base-uri 'none'; object-src 'none'")

    organisation = settings["ORGANISATION"]

    @app.context_processor
    def _globals():
        return {"csrf_token": csrf_token, "current_login": current_login, "issuer": issuer,
                "organisation": organisation,
                "organisation_title": without_article(organisation)}

    @app.get("/favicon.ico")
    def _favicon():
        # Browsers ask for it even with <link rel="icon">: the app's own SVG.
        return send_from_directory(app.static_folder, "favicon.svg",
                                   mimetype="image/svg+xml", max_age=86400)

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

    @app.errorhandler(413)
    def _too_large(_error):
        return error_page("Fichier trop volumineux",
                          "Le fichier envoyé est trop volumineux. Réduisez-le et recommencez.",
                          413)

    @app.errorhandler(requests.RequestException)
    def _provider_down(error):
        log.warning("provider unreachable: %s", error)
        return error_page("Service de connexion indisponible",
                          "Le service de connexion ne répond pas. Réessayez dans quelques "
                          "minutes.", 502)

    def sign_in_again(message: str):
        logins.remove(session.pop("login", None))
        flash(message, "error")
        return redirect(url_for("home"))

    bp = Blueprint("signin", __name__)

    @bp.get("/connexion")
    def login():
        next_path = safe_next(request.args.get("next"))
        response = provider.authorize_redirect(base_url + url_for("signin.callback"))
        if next_path:
            session["next"] = next_path
        return response

    @bp.get("/callback")
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
        next_path = safe_next(session.get("next"))
        logins.remove(session.get("login"))
        session.clear()  # a new session for a new login (no fixation)
        session["login"] = logins.add(Login(token=dict(token), id_claims=id_claims,
                                            userinfo=userinfo))
        return redirect(next_path or url_for(after_login))

    @bp.post("/actualiser")
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
            # The scope granted (the provider may have granted less than asked).
            token = provider.fetch_access_token(grant_type="refresh_token",
                                                refresh_token=refresh_token,
                                                scope=current.token.get("scope"))
            userinfo = dict(provider.userinfo(token=token))
        except OAuthError as exc:
            # invalid_grant: the refresh token expired, or the citizen withdrew this
            # app's access in their account (or was signed out everywhere).
            log.warning("refresh refused: %s", exc.error)
            return sign_in_again(ACCESS_WITHDRAWN)
        except requests.HTTPError as exc:
            if exc.response is None or exc.response.status_code not in (400, 401, 403):
                raise  # the provider failing: the "unavailable" page, the login kept
            log.warning("userinfo refused after refresh: %s", exc.response.status_code)
            return sign_in_again(ACCESS_WITHDRAWN)
        if userinfo.get("sub") != current.id_claims["sub"]:
            return sign_in_again("Reconnectez-vous.")
        # Keep the ID token validated at sign-in: it is the id_token_hint for logout.
        token["id_token"] = current.token.get("id_token")
        current.token, current.userinfo = dict(token), userinfo
        flash("Vos informations ont été mises à jour depuis votre compte usager.", "ok")
        return redirect(safe_next(request.form.get("next")) or url_for(after_login))

    seen_jtis: set[str] = set()

    @bp.post("/backchannel-logout")
    def backchannel_logout():
        """The provider tells that a session ended: end ours (§2.8: 200, or 400)."""
        try:
            claims = verify_logout_token(request.form.get("logout_token", ""),
                                         provider.fetch_jwk_set(), issuer,
                                         settings["CLIENT_ID"], seen_jtis)
        except LogoutTokenError as exc:
            log.warning("logout token refused (%s)", exc)
            return {"error": "invalid_request"}, 400, {"Cache-Control": "no-store"}
        ended = logins.end_session(claims.get("sid"), claims.get("sub"))
        log.info("back-channel logout: %d local session(s) ended", ended)
        return "", 200, {"Cache-Control": "no-store"}

    @bp.post("/deconnexion")
    def logout():
        check_csrf()
        current = logins.remove(session.pop("login", None))
        session.clear()
        if current is None or not current.token.get("id_token"):
            return redirect(url_for("home"))
        return provider.logout_redirect(post_logout_redirect_uri=base_url + "/",
                                        id_token_hint=current.token["id_token"])

    app.register_blueprint(bp)
    # The stylesheet and the error page the apps share.
    app.register_blueprint(Blueprint("common", __name__, static_folder="static",
                                     static_url_path="/static/common",
                                     template_folder="templates"))

    def logout_return() -> Any:
        """On the home page: back from the provider's end_session_endpoint."""
        if "state" not in request.args:
            return None
        try:
            provider.validate_logout_response()
            flash("Vous êtes déconnecté de ce service et de votre compte usager.", "ok")
        except OAuthError:
            flash("Le retour de déconnexion n'a pas été reconnu : vous êtes déconnecté "
                  "de ce service, mais vérifiez votre session sur le compte usager.", "error")
        return redirect(url_for("home"))

    app.extensions["signin_logout_return"] = logout_return
    return provider


def serve(create_app: Callable[[], Flask]) -> None:
    """``python -m clients.<app>``: serve the app on its BASE_URL's host and port."""
    from urllib.parse import urlsplit

    from werkzeug.serving import run_simple

    app = create_app()
    base = urlsplit(app.config["BASE_URL"])
    port = base.port or (443 if base.scheme == "https" else 80)
    run_simple(base.hostname or "127.0.0.1", port, app, threaded=True, use_reloader=False)


def staff_area(app: Flask, prefix: str, username: str, password: str, prompt: str) -> None:
    """Every path below ``prefix`` behind HTTP Basic (the staff pages of a sample app:
    agents, editors). Without a password the area does not exist (404)."""
    realm = prefix.strip("/")

    @app.before_request
    def _staff_only():
        if not request.path.startswith(prefix):
            return None
        if not password:
            abort(404)
        auth = request.authorization
        if (auth and auth.type == "basic" and auth.username == username
                and hmac.compare_digest((auth.password or "").encode(), password.encode())):
            return None
        return Response(prompt, 401,
                        {"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'})


def login_required(view: Callable) -> Callable:
    import functools

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_login() is None:
            flash("Connectez-vous pour continuer.", "error")
            return redirect(url_for("signin.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)
    return wrapped

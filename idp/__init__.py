"""compte-usager: an OpenID Connect identity provider for citizens.

``create_app(config)`` builds the Flask application: services (database, key-value
store, keys, password hashing, the Authlib server), then one blueprint per area.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

from flask import (Flask, has_request_context, redirect, render_template, request, session,
                   url_for)
from flask_babel import Babel
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from . import logs, outages
from .config import PROJECT_ROOT, Settings, load_settings
from .security.passwords import HashingBusy
from .paths import API_PATHS, is_api_path, loggable

__all__ = ["create_app"]

log = logging.getLogger("idp")
# Title and message of the error page by HTTP status (Werkzeug's names are English only).
_HTTP_ERRORS = {
    400: (_l("Demande incorrecte"),
          _l("La demande envoyée n'est pas valide. Revenez en arrière et recommencez.")),
    403: (_l("Accès refusé"), _l("Vous n'avez pas accès à cette page.")),
    404: (_l("Page introuvable"),
          _l("Cette page n'existe pas ou n'existe plus. Vérifiez l'adresse.")),
    405: (_l("Action non autorisée"), _l("Cette page ne permet pas cette action.")),
    413: (_l("Envoi trop volumineux"), _l("Les informations envoyées sont trop volumineuses.")),
    429: (_l("Trop de demandes"),
          _l("Trop de demandes en peu de temps. Patientez quelques minutes, puis réessayez.")),
}
csrf = CSRFProtect()
babel = Babel()


def _secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    path = settings.instance_path / "secret_key"
    if not path.exists():
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _select_locale() -> str:
    """``?lang=`` (the language links; remembered in the session), then the OIDC
    ``ui_locales`` of an authorization request (also remembered, so that the login and
    consent pages that follow keep it), the session, the signed-in user's ``locale``,
    Accept-Language, and last ``default_locale`` (French)."""
    from .services import services

    settings = services().settings
    if not has_request_context():  # CLI, app-context code: the default language
        return settings.default_locale
    supported = settings.locales
    wanted = request.args.get("lang")
    if wanted in supported:
        session["lang"] = wanted
        return wanted
    from flask import g

    ui_locales = (request.args.get("ui_locales") or "").split() or getattr(g, "ui_locales", [])
    for tag in ui_locales or []:
        base = tag.split("-")[0].lower()
        if base in supported:
            session["lang"] = base
            return base
    if session.get("lang") in supported:
        return session["lang"]
    if current_user and current_user.is_authenticated and current_user.user.locale in supported:
        return current_user.user.locale
    return request.accept_languages.best_match(supported) or settings.default_locale


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    """Build the application. ``config`` is a ``Settings`` object, or a dict of
    overrides applied on top of the TOML file and the environment."""
    from .admin.registration import install as install_client_registration
    from .persistence.flows import attach_store as attach_flow_store
    from .messaging.messenger import make_messenger
    from .oidc import CLIENT_AUTHENTICATING, CSRF_EXEMPT, check_protocol_requests
    from .oidc import bp as oidc_bp
    from .oidc.keys import KeyStore
    from .oidc.server import AuthorizationServer
    from .oidc.tokens import TokenService
    from .persistence.client_cache import ClientCache
    from .persistence.db import Database
    from .persistence.kv import make_store
    from .persistence.migrate import ensure_schema
    from .security.captcha import make_captcha
    from .security.headers import apply_security_headers
    from .security.input_guard import install_nul_guard
    from .security.origin import install_origin_check
    from .security.passwords import PasswordService
    from .security.ratelimit import install as install_rate_limits
    from .security.sessions import ServerSessionInterface
    from .security.message_guard import make_email_guard, make_sms_guard
    from .services import Services
    from .web.auth import login_manager

    settings = config if isinstance(config, Settings) else load_settings(config)
    if not settings.is_https:
        # Authlib refuses plain http unless told; only the local demo and tests use it.
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"),
                static_folder="static", instance_path=str(settings.instance_path))
    secret_key = _secret_key(settings)
    app.config.update(
        SECRET_KEY=secret_key,
        TESTING=settings.testing,
        DEBUG=settings.debug,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which expires anyway
        # Flask-WTF's strict mode wants a Referer on https posts, which browsers do not
        # send under our Referrer-Policy: no-referrer. The Origin / Sec-Fetch-Site check
        # (security/origin.py) does that job instead.
        WTF_CSRF_SSL_STRICT=False,
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_TRANSLATION_DIRECTORIES=str(PROJECT_ROOT / "idp" / "translations"),
        MAX_CONTENT_LENGTH=1024 * 1024,
        PREFERRED_URL_SCHEME="https" if settings.is_https else "http",
    )

    db = Database(settings.effective_database_url, settings.database_statement_timeout)
    if settings.auto_migrate:
        ensure_schema(db)
    kv = make_store(settings.redis_url, settings.redis_prefix, settings.redis_sentinels,
                    settings.redis_sentinel_service)
    attach_flow_store(db.session_factory, kv)
    keys = KeyStore(settings.keys_path, settings.tokens.signing_algs)
    keys.ensure()
    svc = Services(
        settings=settings, db=db, kv=kv, keys=keys, tokens=TokenService(settings, keys),
        clients=ClientCache(),
        passwords=PasswordService(settings.passwords.argon2_memory_kib,
                                  settings.passwords.argon2_time_cost,
                                  settings.passwords.argon2_parallelism,
                                  settings.passwords.max_concurrent_hashes,
                                  settings.passwords.hash_wait),
        messenger=make_messenger(settings.messaging,
                                 settings.resolve_path(settings.messaging.outbox_dir),
                                 sms_guard=make_sms_guard(kv, settings.messaging),
                                 email_guard=make_email_guard(kv, settings.messaging)),
        captcha=make_captcha(settings.registration.captcha_backend, secret_key,
                             settings.registration.captcha_difficulty, kv,
                             ttl=settings.registration.captcha_ttl),
        secret_key=secret_key, pairwise_salt=settings.pairwise_salt or secret_key)
    app.extensions["idp"] = svc
    svc.oauth = AuthorizationServer(svc)
    svc.oauth.init(app)
    install_client_registration(svc.oauth)

    app.session_interface = ServerSessionInterface(
        kv, settings.session.cookie_name,
        secure=settings.is_https if settings.session.cookie_secure == "auto"
        else settings.session.cookie_secure == "true",
        idle_timeout=settings.session.idle_timeout,
        absolute_lifetime=settings.session.absolute_lifetime,
        sessionless_paths=API_PATHS)
    login_manager.init_app(app)
    # Flask runs before_request hooks in the order they are added. Then the rate limits
    # (every counted POST is counted, whatever follows), the form rules of the endpoints
    # clients call (before anything reads their form), a cross-site post refused as such
    # (403), no NUL reaching a query, then the CSRF check.
    outages.install(app)  # first: nothing else runs without the session store
    svc.client_failures = install_rate_limits(app, kv, settings, CLIENT_AUTHENTICATING)
    app.before_request(check_protocol_requests)
    install_origin_check(app, CSRF_EXEMPT, settings.issuer)
    install_nul_guard(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)

    _register_blueprints(app, CSRF_EXEMPT, oidc_bp)
    _register_handlers(app, apply_security_headers, settings)
    if settings.session.logout_propagation_interval > 0:
        from .oidc.logout_propagation import Propagator

        svc.logout_propagator = Propagator(app, settings.session.logout_propagation_interval)
        svc.logout_propagator.start()
    logs.configure(settings.observability)
    logs.install(app, settings.server.access_log)
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    return app


def _register_blueprints(app: Flask, csrf_exempt, oidc_bp) -> None:
    from .operations import bp as operations_bp
    from .account import bp as account_bp
    from .admin.views import bp as admin_bp
    from .api import bp as api_bp
    from .flows.login import bp as login_bp
    from .flows.mfa import bp as mfa_bp
    from .flows.recovery import bp as recovery_bp
    from .flows.registration import bp as registration_bp
    from .flows.terms import bp as terms_bp
    from .flows.terms import enforce_terms
    from .web.legal import bp as legal_bp

    app.register_blueprint(operations_bp)
    app.register_blueprint(oidc_bp)
    app.register_blueprint(login_bp)
    app.register_blueprint(mfa_bp)
    app.register_blueprint(recovery_bp)
    app.register_blueprint(registration_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(terms_bp)
    app.register_blueprint(legal_bp)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)  # bearer-token APIs: no browser form, no session
    app.before_request(enforce_terms)
    for endpoint in csrf_exempt:
        csrf.exempt(app.view_functions[endpoint])

    @app.route("/")
    def home():
        if current_user.is_authenticated:
            return redirect(url_for("account.index"))
        return render_template("home.html")

    @app.route("/conditions-generales", endpoint="terms_page")
    def terms():
        return render_template("terms.html")


def _register_handlers(app: Flask, apply_security_headers, settings: Settings) -> None:
    from .services import services
    from .web.common import language_url, ui_locale
    from .web.territory import template_globals as territory_globals

    @app.context_processor
    def _template_globals():
        return {
            "current_locale": ui_locale,
            "service_name": lambda: settings.service_name,
            "organisation_name": lambda: settings.organisation_name,
            "terms_version": lambda: settings.registration.terms_version,
            "url_map_endpoints": lambda: app.view_functions.keys(),
            "language_url": language_url,
            **territory_globals(settings),
        }

    @app.teardown_appcontext
    def _remove_session(_exc):
        services().db.remove()

    @app.after_request
    def _headers(response):
        return apply_security_headers(response, settings.is_https)

    @app.errorhandler(CSRFError)
    def _csrf_error(_error):
        return render_template("errors/error.html", status=400,
                               title=_("Formulaire expiré"),
                               message=_("Ce formulaire a expiré ou a déjà été envoyé. "
                                         "Rechargez la page et recommencez.")), 400

    @app.errorhandler(HashingBusy)
    def _hashing_busy(_error):
        services().db.session.rollback()
        return render_template(
            "errors/error.html", status=503, title=_("Service très sollicité"),
            message=_("Le service reçoit beaucoup de demandes en ce moment. Patientez "
                      "quelques secondes, puis envoyez de nouveau le formulaire.")), \
            503, {"Retry-After": "10"}

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if error.response is not None:
            return error.response
        if any(name.lower() == "content-type" and "json" in value
               for name, value in error.get_headers()):
            return error.get_response()  # an answer of its own (Authlib's resource errors)
        if is_api_path(request.path):
            challenge = [(name, value) for name, value in error.get_headers()
                         if name in ("Allow", "WWW-Authenticate", "Retry-After")]
            return ({"error": "invalid_request", "error_description": error.name},
                    error.code, challenge)
        title, message = _HTTP_ERRORS.get(error.code, (_("Erreur %(code)s", code=error.code),
                                                        None))
        return render_template("errors/error.html", status=error.code, title=title,
                               message=message), error.code

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if outages.is_outage(error):  # raised before the request ran (opening it)
            return outages.unavailable(error)
        log.exception("unhandled error on %s %s", request.method, loggable(request.path))
        services().db.session.rollback()
        if is_api_path(request.path):
            return {"error": "server_error"}, 500
        return render_template("errors/error.html", status=500,
                               title=_("Erreur inattendue"),
                               message=_("Une erreur inattendue s'est produite. "
                                         "Réessayez dans quelques instants.")), 500

"""When the database or the key-value store cannot be reached.

Browsers get a French page (with its English translation: nothing that needs the
session or the database to render), protocol endpoints the spec's
``temporarily_unavailable`` in JSON, both 503 with ``Retry-After``. The request's
transaction is rolled back, so nothing is half written; the engine's pre-ping and the
Redis client's reconnection make service resume by itself when they come back.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, request, session
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import InternalServerError

from .paths import is_api_path
from .persistence.kv import UNAVAILABLE as STORE_UNAVAILABLE

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
OUTAGES = (*DATABASE_UNAVAILABLE, *STORE_UNAVAILABLE)
RETRY_AFTER = "30"


def is_outage(error: BaseException) -> bool:
    if isinstance(error, InternalServerError) and error.original_exception is not None:
        error = error.original_exception
    return isinstance(error, OUTAGES)


def unavailable(error: BaseException | None = None) -> Response:
    """The 503 answer; ``error`` only names what failed, in the log."""
    from .services import services

    try:
        services().db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may be the thing that is gone
        log.debug("rollback failed during an outage", exc_info=True)
    log.error("service unavailable on %s: %s", request.endpoint,
              type(error).__name__ if error else "store")
    if is_api_path(request.path):
        response = jsonify(error="temporarily_unavailable",
                           error_description="The service is temporarily unavailable.")
    else:
        # Without Flask's context processors: Flask-Login's would load the signed-in
        # user, from the database that may be the thing that is gone.
        page = current_app.jinja_env.get_template("errors/unavailable.html")
        response = Response(page.render(service_name=services().settings.service_name))
    response.status_code = 503
    response.headers["Retry-After"] = RETRY_AFTER
    response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask) -> None:
    @app.before_request
    def refuse_without_a_store() -> Response | None:
        # The browser session could not be read (idp.security.sessions).
        if getattr(session, "store_unavailable", False):
            return unavailable()
        return None

    for error_class in OUTAGES:
        app.register_error_handler(error_class, unavailable)

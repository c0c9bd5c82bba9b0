"""Logging: one line per event, as text or JSON, each with its request id.

A request's id comes from the reverse proxy's ``X-Request-Id`` when it is a plausible
one, or is made up; it goes back in the response's ``X-Request-Id`` and on every line
logged while the request runs, so that one request can be followed through the proxy's
log and the provider's.

The access log is written by the application, not by the server: the server's would
show a percent-decoded path, in which ``%0d%0a`` starts a forged line. Here a path is
escaped (:func:`idp.paths.loggable`) and never carries its query string, which may hold
a code or a token. Nothing logged anywhere holds a secret: messages name users by
masked addresses and never quote a password, code or token.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, has_request_context, request

from .config import ObservabilitySettings
from .metrics import REQUEST_SECONDS
from .paths import loggable

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
REQUEST_ID_HEADER = "X-Request-Id"
PLAUSIBLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
# Attributes of a record that the JSON lines carry when a call sets them (extra=...).
JSON_FIELDS = ("method", "path", "status", "duration_ms", "endpoint", "client_ip")

access_log = logging.getLogger("idp.access")


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname, "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            **{name: getattr(record, name) for name in JSON_FIELDS if hasattr(record, name)},
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(settings: ObservabilitySettings) -> None:
    """A handler for the provider's loggers, unless the deployment configured one."""
    logger = logging.getLogger("idp")
    logger.setLevel(settings.log_level.upper())
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RequestIdFilter())
    logger.addHandler(handler)


def install(app: Flask, access_log_enabled: bool) -> None:
    """The request id, the request-duration metric and (when enabled) the access log."""

    @app.before_request
    def start_request() -> None:
        g.request_started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if PLAUSIBLE_REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def end_request(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("request_started", time.perf_counter())
        REQUEST_SECONDS.labels(request.endpoint or "none", request.method).observe(elapsed)
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        if access_log_enabled:
            path = loggable(request.path)
            access_log.info('%s "%s %s" %d %.1fms', request.remote_addr, request.method, path,
                            response.status_code, elapsed * 1000, extra={
                                "method": request.method, "path": path,
                                "status": response.status_code,
                                "duration_ms": round(elapsed * 1000, 1),
                                "endpoint": request.endpoint,
                                "client_ip": request.remote_addr})
        return response

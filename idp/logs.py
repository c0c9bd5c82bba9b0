"""Logging: the provider's events on the standard error, and its access log.

The access log is written by the application, not by the server: the server's would
show a percent-decoded path, in which ``%0d%0a`` starts a forged line. Here a path is
escaped (:func:`idp.paths.loggable`) and never carries its query string, which may
hold a code or a token.
"""

from __future__ import annotations

import logging
import sys
import time

from flask import Flask, Response, g, request

from .paths import loggable

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
access_log = logging.getLogger("idp.access")


def configure() -> None:
    """A handler for the provider's loggers, unless the deployment configured one."""
    logger = logging.getLogger("idp")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def install_access_log(app: Flask) -> None:
    @app.before_request
    def start_clock() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        elapsed = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
        access_log.info('%s "%s %s" %d %.1fms', request.remote_addr, request.method,
                        loggable(request.path), response.status_code, elapsed)
        return response

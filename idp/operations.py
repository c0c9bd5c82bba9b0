"""Health checks and metrics, for load balancers, orchestrators and Prometheus.

- ``/healthz``: the process answers (liveness);
- ``/readyz``: the database and the key-value store answer, and the schema is at the
  migrations' head (readiness: take the instance out of the pool otherwise);
- ``/metrics``: Prometheus' text format, for a scraper with the bearer token or from the
  allowed networks (``[observability]``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from flask import Blueprint, Response, abort, jsonify, request
from sqlalchemy import text

from .metrics import exposition
from .persistence.migrate import current_revision, head_revision
from .services import services

log = logging.getLogger(__name__)

bp = Blueprint("operations", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


def _database_ready() -> str:
    db = services().db
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return "ok" if current_revision(db) == head_revision() else "migrations pending"


def _store_ready() -> str:
    return "ok" if services().kv.ping() else "no answer"


@bp.get("/readyz")
def readyz() -> Response:
    checks = {}
    for name, check in (("database", _database_ready), ("store", _store_ready)):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure makes the instance unready
            log.warning("readiness: %s unavailable (%s)", name, type(exc).__name__)
            checks[name] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    response = jsonify(status="ready" if ready else "unready", checks=checks)
    response.status_code = 200 if ready else 503
    return response


def _may_scrape() -> bool:
    settings = services().settings.observability
    token = settings.metrics_token
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network)
               for network in settings.metrics_networks)


@bp.get("/metrics")
def metrics() -> Response:
    if not _may_scrape():
        abort(403)
    body, content_type = exposition()
    return Response(body, content_type=content_type)

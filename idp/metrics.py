"""Prometheus metrics, with the standard client library (``prometheus_client``).

Under ``idp serve`` each worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (set by the server before the workers start), and
``/metrics`` adds them up, whichever worker answers: the library's multi-process mode.
Nothing here imports the rest of the provider; the areas count what they do.
"""

from __future__ import annotations

import os

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter,
                               Histogram, generate_latest, multiprocess)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

SIGN_INS = Counter("idp_sign_ins_total", "Sign-in attempts, by outcome.", ["outcome"])
TOKENS = Counter("idp_tokens_total", "Token endpoint answers, by grant type and outcome.",
                 ["grant_type", "outcome"])
MESSAGES = Counter("idp_messages_total", "Emails and SMS (codes, links, notices), by channel "
                   "and outcome.", ["channel", "outcome"])
RATE_LIMITED = Counter("idp_rate_limit_refusals_total", "Requests refused by a rate limit, "
                       "by rule.", ["rule"])
REQUEST_SECONDS = Histogram("idp_request_duration_seconds", "Time to answer a request, by "
                            "endpoint.", ["endpoint", "method"],
                            buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
HASH_SECONDS = Histogram("idp_password_hash_duration_seconds", "Time of a password hash or "
                         "verification.", ["operation"],
                         buckets=(.005, .01, .02, .05, .1, .25, .5, 1, 2.5))

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


def grant_type_label(value: str | None) -> str:
    """A bounded label: a client may send anything as grant_type."""
    return value if value in GRANT_TYPES else "other"


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

"""Health checks, Prometheus metrics and structured logs."""

from __future__ import annotations

import json
import logging

from flask import g

from idp.logs import JsonFormatter, RequestIdFilter
from tests.conftest import basic_auth


def test_health_and_readiness(browser):
    health = browser.get("/healthz")
    assert health.status_code == 200 and health.json == {"status": "ok"}
    ready = browser.get("/readyz")
    assert ready.status_code == 200 and ready.json == {
        "status": "ready", "checks": {"database": "ok", "store": "ok"}}
    assert ready.headers["Cache-Control"] == "no-store" and "Set-Cookie" not in ready.headers


def test_metrics_are_for_allowed_scrapers_only(make_app, app):
    scraper = make_app(observability={"metrics_token": "t0ken-for-prometheus"}).test_client()
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert scraper.get("/metrics", environ_base=outside).status_code == 403
    assert scraper.get("/metrics", environ_base=outside,
                       headers={"Authorization": "Bearer wrong"}).status_code == 403
    allowed = scraper.get("/metrics", environ_base=outside,
                          headers={"Authorization": "Bearer t0ken-for-prometheus"})
    assert allowed.status_code == 200 and allowed.mimetype == "text/plain"
    assert scraper.get("/metrics").status_code == 200  # from 127.0.0.1


def sample(text: str, name: str, **labels) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_sign_ins_tokens_hashes_and_requests(browser, user, client_factory):
    before = browser.get("/metrics").get_data(as_text=True)
    service = client_factory(grant_types=["client_credentials"], scopes=["profile"])
    browser.post("/token", headers=basic_auth(service), data={"grant_type": "client_credentials"})
    browser.login(user.email, password="not the right one at all")
    browser.login(user.email)
    after = browser.get("/metrics").get_data(as_text=True)

    def grew(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)
    assert grew("idp_tokens_total", grant_type="client_credentials", outcome="issued") == 1
    assert grew("idp_sign_ins_total", outcome="success") == 1
    assert grew("idp_sign_ins_total", outcome="bad_password") == 1
    assert grew("idp_password_hash_duration_seconds_count", operation="verify") >= 2
    assert grew("idp_request_duration_seconds_count", endpoint="oidc.token",
                method="POST") == 1


def test_a_request_id_is_kept_or_made_and_carried_by_every_log_line(app, browser):
    kept = browser.get("/healthz", headers={"X-Request-Id": "proxy-1234"})
    assert kept.headers["X-Request-Id"] == "proxy-1234"
    made = browser.get("/healthz", headers={"X-Request-Id": "not <a> plausible id"})
    assert len(made.headers["X-Request-Id"]) == 32  # made up instead
    with app.test_request_context("/"):
        g.request_id = "req-42"
        record = logging.LogRecord("idp.test", logging.WARNING, __file__, 1,
                                   "refused %s", ("something",), None)
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-42" and line["message"] == "refused something"
    assert line["level"] == "WARNING" and line["logger"] == "idp.test"

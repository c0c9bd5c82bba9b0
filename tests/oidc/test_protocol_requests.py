"""The endpoints relying parties' servers call (token, introspection, revocation,
userinfo): form bodies as RFC 6749 §3.2 wants them, JSON answers, no cache, Flask's
hooks applied as to every endpoint."""

from __future__ import annotations

import pytest

from idp.oidc.endpoints.token import MAX_BODY_BYTES
from tests.conftest import basic_auth
from tests.oidc.test_resources import tokens_for
from tests.oidc.test_token import bearer

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def service(client_factory):
    return client_factory(grant_types=["client_credentials"], scopes=["openid"])


def post(browser, path, body, client=None, content_type=FORM, **kw):
    headers = basic_auth(client) if client else {}
    return browser.post(path, data=body, headers=headers, content_type=content_type, **kw)


def test_a_grant_answers_json_that_no_cache_keeps_with_the_security_headers(browser, service):
    response = post(browser, "/token", "grant_type=client_credentials", service)
    assert response.status_code == 200 and response.json["token_type"] == "Bearer"
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    # One of each: Authlib's own Cache-Control and Content-Type are not repeated.
    assert len(response.headers.getlist("Cache-Control")) == 1
    assert len(response.headers.getlist("Content-Type")) == 1
    # Never a browser session: no cookie is set.
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
def test_only_post_is_allowed(browser, path):
    response = browser.get(path)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"] and "GET" not in response.headers["Allow"]
    assert response.json["error"] == "invalid_request"


def test_userinfo_allows_get_head_and_post_only(browser, rp, user):
    response = browser.client.put("/userinfo")
    assert response.status_code == 405
    assert {"GET", "HEAD", "POST"} <= set(response.headers["Allow"].split(", "))
    # HEAD: GET's status and headers, no body.
    token = tokens_for(browser, rp, user)["access_token"]
    get = browser.get("/userinfo", headers=bearer(token))
    head = browser.client.head("/userinfo", headers=bearer(token))
    assert head.status_code == get.status_code == 200
    assert head.data == b"" and head.headers["Content-Length"] == get.headers["Content-Length"]
    assert browser.client.head("/userinfo").status_code == 401


def test_userinfo_takes_the_token_from_a_form_body(browser, rp, user):
    tokens = tokens_for(browser, rp, user)
    response = post(browser, "/userinfo", {"access_token": tokens["access_token"]})
    assert response.status_code == 200 and response.json["email"] == user.email
    assert response.headers["Cache-Control"] == "no-store"
    # A repeated parameter is malformed (RFC 6750 §3.1 invalid_request), never a 500.
    twice = post(browser, "/userinfo", f"access_token={tokens['access_token']}&access_token=x")
    assert twice.status_code == 400
    assert 'error="invalid_request"' in twice.headers["WWW-Authenticate"]
    # A body that is not a form carries no token: the header's is used.
    other = browser.post("/userinfo", headers=bearer(tokens["access_token"]),
                         data='{"access_token": "x"}', content_type="application/json")
    assert other.status_code == 200


def test_a_repeated_parameter_is_invalid_request(browser, service):
    # RFC 6749 §3.2: parameters MUST NOT be included more than once.
    response = post(browser, "/token", "grant_type=client_credentials&scope=openid&scope=x",
                    service)
    assert response.status_code == 400
    assert response.json == {"error": "invalid_request",
                             "error_description": "parameter 'scope' repeated"}


def test_an_empty_parameter_counts_as_omitted(browser, service):
    # RFC 6749 §3.1: sent without a value, treated as if omitted (no scope asked: the
    # client's registered scopes are granted, as when scope is absent).
    with_empty = post(browser, "/token", "grant_type=client_credentials&scope=", service)
    without = post(browser, "/token", "grant_type=client_credentials", service)
    assert with_empty.status_code == without.status_code == 200
    assert with_empty.json["scope"] == without.json["scope"]


def test_parameters_come_from_the_form_body_only(browser, service):
    response = browser.post("/token?grant_type=client_credentials", headers=basic_auth(service),
                            data="", content_type=FORM)
    assert response.status_code == 400
    assert response.json == {"error": "invalid_request", "error_description":
                             "the parameters must be sent in the request body"}


@pytest.mark.parametrize("content_type,body", [
    ("application/json", '{"grant_type": "client_credentials"}'),
    ("text/plain", "grant_type=client_credentials"),
])
def test_a_body_that_is_not_a_form_is_invalid_request(browser, service, content_type, body):
    response = post(browser, "/token", body, service, content_type=content_type)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert FORM in response.json["error_description"]


def test_a_form_with_a_charset_parameter_is_a_form(browser, service):
    response = post(browser, "/token", "grant_type=client_credentials", service,
                    content_type=FORM + "; charset=UTF-8")
    assert response.status_code == 200


def test_malformed_bodies_are_invalid_request_not_errors(browser, service):
    # Percent-escapes that are not UTF-8, and bytes that are not either.
    for body in (b"grant_type=client_credentials&scope=%ff%fe", b"grant_type=\xff\xfe"):
        response = post(browser, "/token", body, service)
        assert response.status_code == 400, body
        assert response.json == {"error": "invalid_request",
                                 "error_description": "malformed form body"}
    too_many = "&".join(f"p{i}=x" for i in range(101))
    assert post(browser, "/token", too_many, service).json["error"] == "invalid_request"


def test_a_body_over_the_limit_is_413(browser, service):
    body = "grant_type=client_credentials&pad=" + "x" * MAX_BODY_BYTES
    response = post(browser, "/token", body, service)
    assert response.status_code == 413
    assert response.json["error"] == "invalid_request"


def call_wsgi(app, service, body: bytes, **environ_items):
    """The WSGI app called directly (Werkzeug's test client always sends a valid
    Content-Length): (status line, body)."""
    import io

    statuses = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/token", "SERVER_NAME": "localhost",
               "SERVER_PORT": "443", "wsgi.url_scheme": "https", "REMOTE_ADDR": "10.0.0.5",
               "CONTENT_TYPE": FORM, "wsgi.input": io.BytesIO(body),
               **{"HTTP_" + k.upper(): v for k, v in basic_auth(service).items()},
               **environ_items}
    answer = b"".join(app.wsgi_app(environ, lambda status, headers: statuses.append(status)))
    return statuses[0], answer


def test_a_bad_content_length_is_a_client_error_not_a_500(app, service):
    # (The server refuses such a request before the application sees it.)
    status, body = call_wsgi(app, service, b"grant_type=client_credentials",
                             CONTENT_LENGTH="many")
    assert status.startswith("400 ")
    assert b'"error"' in body


def test_a_chunked_body_delimited_by_the_server_is_read(app, service):
    # A server that decodes a chunked body says so with wsgi.input_terminated.
    status, body = call_wsgi(app, service, b"grant_type=client_credentials",
                             **{"wsgi.input_terminated": True})
    assert status == "200 OK", body
    status, _ = call_wsgi(app, service, b"grant_type=client_credentials&pad=" +
                          b"x" * MAX_BODY_BYTES,
                          **{"wsgi.input_terminated": True})
    assert status.startswith("413 ")


def test_introspection_and_revocation_with_a_wrong_secret_are_401_basic(browser, service):
    wrong = basic_auth(service.__class__(service.client_id, "wrong", service.redirect_uri))
    for path in ("/introspect", "/revoke"):
        response = browser.post(path, headers=wrong, data={"token": "x"})
        assert response.status_code == 401
        assert response.json["error"] == "invalid_client"
        assert response.headers["WWW-Authenticate"] == \
            'Basic realm="token", error="invalid_client"'


def test_an_unexpected_error_is_a_json_server_error_and_rolls_back(app, browser, service,
                                                                     monkeypatch, caplog):
    server = app.extensions["idp"].oauth
    session = app.extensions["idp"].db.session
    rolled_back = []
    monkeypatch.setattr(session, "rollback", lambda: rolled_back.append(True), raising=False)

    def broken(*_args):
        raise RuntimeError("database went away")
    monkeypatch.setattr(server, "create_token_response", broken)
    response = post(browser, "/token", "grant_type=client_credentials", service)
    assert response.status_code == 500
    assert response.json == {"error": "server_error"}
    assert response.headers["Cache-Control"] == "no-store"
    assert rolled_back == [True]
    assert "unhandled error on POST /token" in caplog.text
    monkeypatch.setattr(app.extensions["idp"].tokens, "decode_access_token", broken)
    response = browser.get("/userinfo", headers=bearer("any"))
    assert response.status_code == 500 and response.json == {"error": "server_error"}
    assert rolled_back == [True, True]


def test_behind_a_trusted_proxy_failures_count_for_the_forwarded_address(make_app):
    from tests.conftest import RegisteredClient

    app = make_app(trusted_proxies=1, rate_limits={"client_failures_per_ip": "2/minute"})
    client = app.test_client()
    nobody = basic_auth(RegisteredClient("nobody", "secret", ""))
    proxy = {"REMOTE_ADDR": "10.0.0.1"}

    def token(forwarded_for):
        return client.post("/token", headers={**nobody, "X-Forwarded-For": forwarded_for},
                           data={"grant_type": "client_credentials"}, environ_base=proxy)
    assert [token("203.0.113.7").status_code for _ in range(3)] == [401, 401, 429]
    # Another citizen behind the same proxy is not blocked with the first.
    assert token("203.0.113.8").status_code == 401

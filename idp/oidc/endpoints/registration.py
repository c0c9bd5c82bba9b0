"""Client registration (RFC 7591, ``POST /register``) and management (RFC 7592,
``GET``/``PUT``/``DELETE /register/<client_id>``), answered by the Authlib server's
endpoints (``idp.admin.registration``, which knows the client registry). JSON in, JSON
out; off when ``client_registration.enabled`` is false."""

from __future__ import annotations

from flask import Response, abort, jsonify, request

from ...services import services

# Client metadata is a few kilobytes at most, a JWKS included (the limit is set by
# idp.oidc.check_protocol_requests, before any hook reads the body).
MAX_BODY_BYTES = 64 * 1024


def _body_error(description: str) -> Response:
    response = jsonify(error="invalid_request", error_description=description)
    response.status_code = 400
    return response


def _check_json_body() -> Response | None:
    """A body that Authlib can read: JSON, and parsed here once (a deeply nested one
    makes the parser raise RecursionError, which nothing else would catch)."""
    if request.mimetype != "application/json":
        return _body_error("the body must be application/json")
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        data = None
    return _body_error("the body is not valid JSON") if data is None else None


def _endpoint_response(name: str) -> Response:
    if not services().settings.client_registration.enabled:
        abort(404)
    if request.method in ("POST", "PUT"):
        refusal = _check_json_body()
        if refusal is not None:
            return refusal
    return services().oauth.create_endpoint_response(name)


def register() -> Response:
    return _endpoint_response("client_registration")


def configure(client_id: str) -> Response:
    return _endpoint_response("client_configuration")

"""Client registration (RFC 7591, ``POST /register``) and management (RFC 7592,
``GET``/``PUT``/``DELETE /register/<client_id>``), answered by the Authlib server's
endpoints (``idp.admin.registration``, which knows the client registry). JSON in, JSON
out; off when ``client_registration.enabled`` is false."""

from __future__ import annotations

from flask import Response, abort, request

from ...services import services

# Client metadata is a few kilobytes at most, a JWKS included.
MAX_BODY_BYTES = 64 * 1024


def _endpoint_response(name: str) -> Response:
    if not services().settings.client_registration.enabled:
        abort(404)
    request.max_content_length = MAX_BODY_BYTES
    return services().oauth.create_endpoint_response(name)


def register() -> Response:
    return _endpoint_response("client_registration")


def configure(client_id: str) -> Response:
    return _endpoint_response("client_configuration")

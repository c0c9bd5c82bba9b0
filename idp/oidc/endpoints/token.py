"""The endpoints where a relying party's server authenticates as a client: token
(RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009), answered by the
Authlib server."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote_plus

from flask import Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from ...metrics import TOKENS, grant_type_label
from ...services import services

FORM_TYPE = "application/x-www-form-urlencoded"
# Enough for a private_key_jwt assertion with room to spare; a form is a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024
MAX_PARAMETERS = 100


def form_error(description: str, status: int = 400) -> Response:
    response = jsonify(error="invalid_request", error_description=description)
    response.status_code = status
    return response


def check_form_post() -> Response | None:
    """RFC 6749 §3.2: the parameters come in an ``application/x-www-form-urlencoded``
    body, each at most once; None when the request is such a form, else the error.
    Runs before any other hook reads the form (``create_app``)."""
    request.max_content_length = MAX_BODY_BYTES
    if request.mimetype != FORM_TYPE:
        return form_error(f"the parameters must be sent as {FORM_TYPE}")
    if request.args:
        return form_error("the parameters must be sent in the request body")
    body = request.get_data(cache=True)
    if len(body) >= MAX_BODY_BYTES:  # a streamed body is cut at the limit, not refused
        raise RequestEntityTooLarge()
    try:
        # Werkzeug keeps what does not decode as it came; a client must send UTF-8.
        parse_qsl(body.decode("utf-8"), errors="strict", max_num_fields=MAX_PARAMETERS)
    except (UnicodeDecodeError, ValueError):
        return form_error("malformed form body")
    for name, values in request.form.lists():
        if len(values) > 1:
            return form_error(f"parameter {name!r} repeated"[:100])
    return check_client_authentication()


def token() -> Response:
    response = services().oauth.create_token_response()
    outcome = "issued" if response.status_code == 200 else \
        (response.get_json(silent=True) or {}).get("error", "error")
    TOKENS.labels(grant_type_label(request.form.get("grant_type")), outcome).inc()
    return response


def introspect() -> Response:
    return services().oauth.create_endpoint_response("introspection")


def revoke() -> Response:
    return services().oauth.create_endpoint_response("revocation")


def basic_credentials() -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic`` header (RFC 6749 §2.3.1:
    each form-urlencoded, then base64 of ``id:secret`` in UTF-8); None when there is no
    such header. Raises ``ValueError`` when it is malformed."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise ValueError("no colon")
    return unquote_plus(client_id), unquote_plus(secret)


def check_client_authentication() -> Response | None:
    """A Basic header that does not decode is a failed client authentication, not an
    error (401 ``invalid_client``); a ``client_id`` in the body must name the client of
    the header (RFC 6749 §2.3: one method only)."""
    try:
        credentials = basic_credentials()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        response = jsonify(error="invalid_client",
                           error_description="Malformed Basic credentials.")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Basic realm="token", error="invalid_client"'
        return response
    body_client_id = request.form.get("client_id")
    if credentials and body_client_id is not None and body_client_id != credentials[0]:
        return form_error("client_id does not match the client of the Authorization header")
    return None

"""Discovery document (OIDC Discovery 1.0, RFC 8414) and JWKS, served from memory."""

from __future__ import annotations

import json

from flask import Response

from ...services import services
from ...web.paths import DISCOVERY_PATH, JWKS_PATH, OAUTH_METADATA_PATH
from .. import claims as claims_mod
from ..grants import ALL_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from .authorize import ACR_ORDER


def build_metadata(settings) -> dict:
    issuer = settings.issuer
    algs = list(settings.tokens.signing_algs)
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "end_session_endpoint": f"{issuer}/logout",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "scopes_supported": claims_mod.supported_scopes(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims_mod.supported_claims(),
        "claims_parameter_supported": True,
        "claim_types_supported": ["normal"],
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "acr_values_supported": ACR_ORDER,
        "display_values_supported": ["page"],
        "ui_locales_supported": settings.locales,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
        "op_tos_uri": f"{issuer}/conditions-generales",
    }


def _discovery_json(svc) -> bytes:
    extras = svc.extras
    if "discovery_json" not in extras:
        extras["discovery_json"] = json.dumps(build_metadata(svc.settings),
                                              separators=(",", ":")).encode()
    return extras["discovery_json"]


def openid_configuration() -> Response:
    body = _discovery_json(services())
    return Response(body, mimetype="application/json", headers={
        "Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


def jwks() -> Response:
    return Response(services().keys.jwks_json, mimetype="application/jwk-set+json", headers={
        "Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


class PublicDocuments:
    """WSGI middleware answering ``GET`` of the discovery document and the JWKS before
    Flask: the same bytes and headers as the views above (which still answer HEAD and
    everything else), without a request context, session, hooks or teardown, which were
    most of the provider's own cost of these two requests (docs/performance.md)."""

    DISCOVERY_PATHS = (DISCOVERY_PATH, OAUTH_METADATA_PATH)

    def __init__(self, wsgi_app, svc) -> None:
        from ...security.headers import security_headers

        self.wsgi_app = wsgi_app
        self.svc = svc
        self.tail = security_headers(svc.settings.is_https)

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET":
            found = self.document(environ.get("PATH_INFO"))
            if found is not None:
                body, headers = found
                start_response("200 OK", headers)
                return [body]
        return self.wsgi_app(environ, start_response)

    def document(self, path: str | None) -> tuple[bytes, list[tuple[str, str]]] | None:
        """The body and headers of a ``GET`` of ``path``, if it is one of the documents.
"""
        if path in self.DISCOVERY_PATHS:
            body, content_type = _discovery_json(self.svc), "application/json"
        elif path == JWKS_PATH:
            body, content_type = self.svc.keys.jwks_json, "application/jwk-set+json"
        else:
            return None
        return body, [("Cache-Control", "public, max-age=300"),
                      ("Access-Control-Allow-Origin", "*"), ("Content-Type", content_type),
                      ("Content-Length", str(len(body))), *self.tail]

"""Discovery document (OIDC Discovery 1.0, RFC 8414) and JWKS: public, cacheable by the
reverse proxy and by relying parties."""

from __future__ import annotations

import json

from flask import Response

from ...services import services
from ...paths import JWKS_PATH
from .. import claims as claims_mod
from ..grants import ALL_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from .authorize import ACR_ORDER


def build_metadata(settings) -> dict:
    issuer = settings.issuer
    algs = list(settings.tokens.signing_algs)
    metadata = {
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
        "response_modes_supported": ["query", "form_post"],
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
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "op_tos_uri": f"{issuer}/conditions-generales",
    }
    if settings.client_registration.enabled:
        # Open with an initial access token only (idp.admin.initial_tokens).
        metadata["registration_endpoint"] = f"{issuer}/register"
    return metadata


PUBLIC_HEADERS = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}


def openid_configuration() -> Response:
    return Response(json.dumps(build_metadata(services().settings)),
                    mimetype="application/json", headers=PUBLIC_HEADERS)


def jwks() -> Response:
    return Response(services().keys.jwks_json, mimetype="application/jwk-set+json",
                    headers=PUBLIC_HEADERS)

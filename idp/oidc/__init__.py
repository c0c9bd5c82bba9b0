"""The OpenID Connect protocol: Authlib server, grants, endpoints, keys, discovery."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..paths import DISCOVERY_PATH, JWKS_PATH, OAUTH_METADATA_PATH
from .endpoints import authorize, discovery, logout, registration, token, userinfo

bp = Blueprint("oidc", __name__)

bp.add_url_rule(DISCOVERY_PATH, "discovery", discovery.openid_configuration)
bp.add_url_rule(OAUTH_METADATA_PATH, "oauth_metadata", discovery.openid_configuration)
bp.add_url_rule(JWKS_PATH, "jwks", discovery.jwks)
bp.add_url_rule("/authorize", "authorize", authorize.authorize, methods=["GET", "POST"])
bp.add_url_rule("/authorize/resume/<flow_id>", "authorize_resume", authorize.authorize_resume,
                methods=["GET", "POST"])
bp.add_url_rule("/logout", "logout", logout.logout, methods=["GET", "POST"])
bp.add_url_rule("/logout/termine", "logged_out", logout.logged_out)
bp.add_url_rule("/token", "token", token.token, methods=["POST"])
bp.add_url_rule("/introspect", "introspect", token.introspect, methods=["POST"])
bp.add_url_rule("/revoke", "revoke", token.revoke, methods=["POST"])
bp.add_url_rule("/userinfo", "userinfo", userinfo.userinfo, methods=["GET", "POST"])
bp.add_url_rule("/register", "client_registration", registration.register, methods=["POST"])
bp.add_url_rule("/register/<client_id>", "client_configuration", registration.configure,
                methods=["GET", "PUT", "DELETE"])

# Called by relying parties' servers or by cross-site browser posts, not by our own forms:
# no CSRF token. (The logout form carries one, checked by the view itself.)
CSRF_EXEMPT = ("oidc.authorize", "oidc.logout", "oidc.token", "oidc.introspect",
               "oidc.revoke", "oidc.userinfo", "oidc.client_registration",
               "oidc.client_configuration")
# Where clients authenticate: failed answers count against the caller's address
# (security/ratelimit.py, client failures).
CLIENT_AUTHENTICATING = ("oidc.token", "oidc.introspect", "oidc.revoke")
REGISTRATION = ("oidc.client_registration", "oidc.client_configuration")


def check_protocol_requests() -> Response | None:
    """Body limits and the form rules of the endpoints where clients authenticate (a
    ``before_request`` hook: it must run before any other hook reads the form)."""
    if request.endpoint in CLIENT_AUTHENTICATING:
        return token.check_form_post()
    if request.endpoint == "oidc.authorize":
        request.max_content_length = authorize.MAX_BODY_BYTES
    if request.endpoint in REGISTRATION:
        request.max_content_length = registration.MAX_BODY_BYTES
    return None

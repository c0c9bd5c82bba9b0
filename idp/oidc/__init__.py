"""The OpenID Connect protocol: Authlib server, grants, endpoints, keys, discovery."""

from __future__ import annotations

from flask import Blueprint

from ..web.paths import DISCOVERY_PATH, JWKS_PATH, OAUTH_METADATA_PATH
from .endpoints import authorize, discovery, logout, token, userinfo

bp = Blueprint("oidc", __name__)

bp.add_url_rule(DISCOVERY_PATH, "discovery", discovery.openid_configuration)
bp.add_url_rule(OAUTH_METADATA_PATH, "oauth_metadata", discovery.openid_configuration)
bp.add_url_rule(JWKS_PATH, "jwks", discovery.jwks)


@bp.record_once
def _serve_public_documents_first(state) -> None:
    # GET of the discovery document and the JWKS skip Flask (same answer, less work).
    app = state.app
    app.wsgi_app = discovery.PublicDocuments(app.wsgi_app, app.extensions["idp"])
bp.add_url_rule("/authorize", "authorize", authorize.authorize, methods=["GET", "POST"])
bp.add_url_rule("/authorize/resume/<flow_id>", "authorize_resume", authorize.authorize_resume,
                methods=["GET", "POST"])
bp.add_url_rule("/token", "token", token.token, methods=["POST"])
bp.add_url_rule("/userinfo", "userinfo", userinfo.userinfo, methods=["GET", "POST"])
bp.add_url_rule("/logout", "logout", logout.logout, methods=["GET", "POST"])


def _endpoint(name: str):
    def view():
        from ..services import services

        return services().extras["oidc_server"].create_endpoint_response(name)
    view.__name__ = name
    return view


bp.add_url_rule("/revoke", "revoke", _endpoint("revocation"), methods=["POST"])
bp.add_url_rule("/introspect", "introspect", _endpoint("introspection"), methods=["POST"])

# Protocol endpoints called by relying parties (not browser forms): no CSRF token.
CSRF_EXEMPT = ("oidc.authorize", "oidc.token", "oidc.userinfo", "oidc.revoke",
               "oidc.introspect", "oidc.logout")

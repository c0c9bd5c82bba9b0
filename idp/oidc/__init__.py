"""The OpenID Connect protocol: Authlib server, grants, endpoints, keys, discovery."""

from __future__ import annotations

from flask import Blueprint

from ..flows.continuation import answer_in_place
from ..web.paths import DISCOVERY_PATH, JWKS_PATH, OAUTH_METADATA_PATH
from .endpoints import authorize, discovery, logout

bp = Blueprint("oidc", __name__)

bp.add_url_rule(DISCOVERY_PATH, "discovery", discovery.openid_configuration)
bp.add_url_rule(OAUTH_METADATA_PATH, "oauth_metadata", discovery.openid_configuration)
bp.add_url_rule(JWKS_PATH, "jwks", discovery.jwks)
bp.add_url_rule("/authorize", "authorize", authorize.authorize, methods=["GET", "POST"])
bp.add_url_rule("/authorize/resume/<flow_id>", "authorize_resume", authorize.authorize_resume,
                methods=["GET", "POST"])
bp.add_url_rule("/logout", "logout", logout.logout, methods=["GET", "POST"])
# A sign-in that an authorization request waits for answers it itself (the code's redirect).
bp.record_once(lambda state: answer_in_place(state.app, "oidc.authorize_resume",
                                             authorize.resume_in_place))


# Protocol endpoints called by relying parties (not browser forms): no CSRF token.
# (The token, introspection, revocation and userinfo endpoints never reach Flask:
# idp/oidc/client_endpoints.py.)
CSRF_EXEMPT = ("oidc.authorize", "oidc.logout")


def serve_below_flask(app, svc, client_server, client_failures) -> None:
    """Put the endpoints that need nothing of Flask in front of it: the discovery
    document and the JWKS (from memory), and the endpoints relying parties' servers
    call (token, introspection, revocation, userinfo). Same answers, much less work (docs/performance.md)."""
    from ..security.headers import security_headers
    from .client_endpoints import ClientEndpoints

    app.wsgi_app = ClientEndpoints(app.wsgi_app, client_server, svc.db, client_failures,
                                   security_headers(svc.settings.is_https))
    app.wsgi_app = discovery.PublicDocuments(app.wsgi_app, svc)

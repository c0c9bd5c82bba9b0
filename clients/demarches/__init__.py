"""A sample démarche (online procedure) that signs citizens in with compte-usager.

It is a separate relying party: it never imports ``idp`` and only uses the provider's
public HTTP endpoints (discovery, authorize, token, userinfo, end_session).
"""

from .app import create_app

__all__ = ["create_app"]

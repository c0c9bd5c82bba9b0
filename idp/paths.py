"""Paths with a role of their own in the request pipeline."""

# Protocol endpoints called by relying parties' servers, not by browsers: answered in
# JSON, never with a page, and never reading or writing the browser session.
API_PATHS = ("/token", "/userinfo", "/revoke", "/introspect", "/register", "/healthz",
             "/readyz", "/metrics", "/api/")

# Public documents (idp/oidc/endpoints/discovery.py).
DISCOVERY_PATH = "/.well-known/openid-configuration"
OAUTH_METADATA_PATH = "/.well-known/oauth-authorization-server"
JWKS_PATH = "/jwks.json"


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATHS)


def loggable(path: str) -> str:
    """A path as it may go in a log line: control characters (a decoded ``%0d%0a``
    would start a forged line) and non-ASCII ones written as escapes."""
    return path.encode("unicode_escape").decode("ascii")[:300]

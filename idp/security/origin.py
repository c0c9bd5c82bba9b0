"""Refuse cross-site form posts before they reach a view (defence in depth with the
CSRF token; OWASP CSRF cheat sheet, "Verifying origin with standard headers" and
"Fetch Metadata").

A state-changing browser request (POST, PUT, PATCH, DELETE) is refused with 403 when:

- its ``Sec-Fetch-Site`` says it comes from another site (``cross-site``) or from a sibling
  host of the same site (``same-site``: our own forms always post to their own origin, and
  a sibling host is not trusted with the user's session); or
- its ``Origin`` is another origin than the provider's (the issuer's origin, or the host
  the request was sent to).

``Origin: null`` is accepted: browsers send it for a same-origin form post from a page
whose ``Referrer-Policy`` is ``no-referrer`` (ours), and then decide with
``Sec-Fetch-Site``. A request with neither header (a script, an old browser) is left to
the CSRF token.

The protocol endpoints that relying parties legitimately call cross-site (authorize,
token, revoke, introspect, userinfo, logout: ``idp.oidc.CSRF_EXEMPT``) are not checked.
"""

from __future__ import annotations

import logging
from typing import Iterable
from urllib.parse import urlsplit

from flask import Flask, render_template, request
from flask_babel import gettext as _

from ..paths import loggable

log = logging.getLogger("idp.security.origin")

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    suffix = f":{port}" if port and port != default else ""
    return f"{parts.scheme}://{host}{suffix}"


def cross_site_reason(method: str, headers, own_origins: Iterable[str]) -> str | None:
    """Why this request must be refused, or None when it may go on."""
    if method not in STATE_CHANGING:
        return None
    fetch_site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    if fetch_site and fetch_site not in ALLOWED_FETCH_SITES:
        return f"sec-fetch-site {fetch_site}"
    origin = (headers.get("Origin") or "").strip()
    if origin and origin != "null" and origin_of(origin) not in set(own_origins):
        return "foreign origin"
    return None


def install_origin_check(app: Flask, exempt_endpoints: Iterable[str], issuer: str) -> None:
    """Register the check as a ``before_request`` hook of ``app``."""
    exempt = frozenset(exempt_endpoints)
    issuer_origin = origin_of(issuer)

    @app.before_request
    def _refuse_cross_site_posts():
        if request.method not in STATE_CHANGING or request.endpoint in exempt:
            return None
        own = {o for o in (issuer_origin, origin_of(request.host_url)) if o}
        reason = cross_site_reason(request.method, request.headers, own)
        if reason is not None:
            # The path only: no query string, which might carry a code or a token.
            log.warning("refused a cross-site %s on %s (%s)", request.method,
                        loggable(request.path), reason)
            return render_template(
                "errors/error.html", status=403, title=_("Requête refusée"),
                message=_("Cette demande provient d'un autre site et a été refusée. "
                          "Revenez sur la page du service et recommencez.")), 403
        return None

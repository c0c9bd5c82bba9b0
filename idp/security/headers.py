"""Security headers on every response (OWASP ASVS V3/V14).

- ``Content-Security-Policy``: scripts and styles from the provider's own files only (no
  inline script or ``style=`` attribute anywhere: the templates keep to that), no
  framing, no plugins, no ``<base>``.
- ``Strict-Transport-Security`` for one year under https.
- ``Referrer-Policy: no-referrer``: authentication pages carry flow ids and
  ``return_to`` in their URLs, which must not leak to other sites.
- ``Cache-Control: no-store`` on everything the provider renders (pages show personal
  data, protocol responses carry tokens), except static files and the public metadata,
  which set their own caching.
"""

from __future__ import annotations

from flask import Response, request

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self' {form_action}; "
       "frame-ancestors 'none'; object-src 'none'; base-uri 'none'")
HSTS = "max-age=31536000; includeSubDomains"
CACHEABLE_ENDPOINTS = {"static", "oidc.discovery", "oidc.oauth_metadata", "oidc.jwks"}


def _cacheable(endpoint: str | None) -> bool:
    # Blueprints' own static folders ("account.static") too.
    return bool(endpoint) and (endpoint in CACHEABLE_ENDPOINTS or endpoint.endswith(".static"))


def apply_security_headers(response: Response, https: bool) -> Response:
    headers = response.headers
    # Forms may post to the provider itself; redirects to relying parties after a
    # form post are governed by form-action in some browsers, hence http(s): there.
    headers.setdefault("Content-Security-Policy", CSP.format(form_action="https:" if https
                                                            else "http: https:"))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)
    # Error pages (unknown URL: no endpoint) are pages too: no-store unless cacheable.
    if not _cacheable(request.endpoint):
        headers.setdefault("Cache-Control", "no-store")
    return response

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


def security_headers(https: bool) -> list[tuple[str, str]]:
    """The headers every response carries (unless it sets its own), in order."""
    # Forms may post to the provider itself; redirects to relying parties after a
    # form post are governed by form-action in some browsers, hence http(s): there.
    headers = [
        ("Content-Security-Policy", CSP.format(form_action="https:" if https
                                               else "http: https:")),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ]
    if https:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


_BY_SCHEME = {True: security_headers(True), False: security_headers(False)}


def apply_security_headers(response: Response, https: bool) -> Response:
    headers = response.headers
    # One pass over the response's headers instead of one lookup per header (this runs
    # on every response): the same result as a setdefault of each.
    present = {name.lower() for name, _ in headers.items()}
    for name, value in _BY_SCHEME[bool(https)]:
        if name.lower() not in present:
            headers.add(name, value)
    # Error pages (unknown URL: no endpoint) are pages too: no-store unless cacheable.
    if "cache-control" not in present and not _cacheable(request.endpoint):
        headers.add("Cache-Control", "no-store")
    return response

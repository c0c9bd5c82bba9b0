"""Security headers on every response (OWASP ASVS V3/V14)."""

from __future__ import annotations

from flask import Response, request

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self' {form_action}; "
       "frame-ancestors 'none'; object-src 'none'; base-uri 'none'")


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
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.endpoint and not request.endpoint.startswith(("static", "oidc.discovery",
                                                             "oidc.jwks")):
        headers.setdefault("Cache-Control", "no-store")
    return response

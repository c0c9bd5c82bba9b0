"""Registering and managing relying parties. Plain functions over a SQLAlchemy session."""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..oidc.claims import supported_scopes
from ..persistence.models import Client, Consent, Grant, hash_client_secret, utcnow

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SUBJECT_TYPES = ("public", "pairwise")
MAX_URI_LENGTH = 500


class ClientError(ValueError):
    pass


def is_loopback(host: str | None) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``: a developer's own machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_uri(uri: str, what: str) -> str:
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH:
        raise ClientError(f"{what} must be a URL of 1 to {MAX_URI_LENGTH} characters")
    if "*" in uri:  # compared exactly: a wildcard would match nothing but itself
        raise ClientError(f"{what} must not hold a wildcard (*): {uri}")
    if "#" in uri:  # even an empty fragment (RFC 6749 §3.1.2)
        raise ClientError(f"{what} must not hold a fragment (#): {uri}")
    if any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise ClientError(f"{what} must not hold spaces or control characters")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed host or port
    except ValueError:
        raise ClientError(f"{what} is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise ClientError(f"{what} must be an absolute http(s) URL without fragment: {uri}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ClientError(f"{what} must use https (http only for localhost): {uri}")
    return uri


def check_page_url(url: str, what: str) -> str:
    """A link citizens are shown (a client's home page, its logo): empty, or an https URL
    (http only on the loopback) without credentials in it, at most 500 characters. A
    plain-http page or image would let anyone on the citizen's network change it."""
    url = (url or "").strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ClientError(f"{what} is not a valid URL: {url}") from None
    if len(url) > 500 or parts.scheme not in ("https", "http") or not host \
            or parts.username is not None or parts.password is not None:
        raise ClientError(f"{what} must be an absolute https URL of at most 500 "
                          f"characters, without credentials: {url}")
    if parts.scheme == "http" and not is_loopback(host):
        raise ClientError(f"{what} must use https (http only for localhost): {url}")
    return url


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def new_client_id() -> str:
    """128 random bits, URL-safe, never starting with "-": an administrator types it
    after commands (``idp clients show ID``), where it would read as an option."""
    while True:
        client_id = secrets.token_urlsafe(16)
        if not client_id.startswith("-"):
            return client_id


def create_client(session: Session, *, name: str, redirect_uris: list[str],
                  post_logout_redirect_uris: list[str] | None = None,
                  auth_method: str = "client_secret_basic", public: bool = False,
                  grant_types: list[str] | None = None, scopes: list[str] | None = None,
                  require_consent: bool = True, subject_type: str = "public",
                  jwks: dict | None = None, client_id: str | None = None,
                  description: str = "", home_url: str = "",
                  sector_identifier: str | None = None,
                  id_token_signed_response_alg: str | None = None,
                  require_pkce: bool = True, backchannel_logout_uri: str | None = None,
                  frontchannel_logout_uri: str | None = None) -> tuple[Client, str | None]:
    """Register a client; returns it with its secret in clear (shown once, never stored)."""
    if not name or len(name) > 200:
        raise ClientError("a name of 1 to 200 characters is required")
    if public:
        auth_method = "none"
    if auth_method not in AUTH_METHODS:
        raise ClientError(f"unknown auth method {auth_method}")
    grant_types = grant_types or ["authorization_code", "refresh_token"]
    for grant_type in grant_types:
        if grant_type not in GRANT_TYPES:
            raise ClientError(f"unknown grant type {grant_type}")
    if auth_method == "none" and not require_pkce:
        raise ClientError("a public client always needs PKCE")
    if auth_method == "none" and "client_credentials" in grant_types:
        raise ClientError("a public client cannot use client_credentials")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientError("at least one redirect URI is required for authorization_code")
    if subject_type not in SUBJECT_TYPES:
        raise ClientError(f"unknown subject type {subject_type}")
    if id_token_signed_response_alg not in (None, "RS256", "ES256"):
        raise ClientError("id_token_signed_response_alg must be RS256 or ES256")
    if auth_method == "private_key_jwt" and not (jwks and jwks.get("keys")):
        raise ClientError("private_key_jwt needs the client's public keys (--jwks)")
    known = set(supported_scopes()) | {"introspection"}
    scopes = scopes or ["openid", "profile", "email", "phone", "address", "offline_access"]
    for scope in scopes:
        if scope not in known:
            raise ClientError(f"unknown scope {scope}")
    client_id = client_id or new_client_id()
    if session.get(Client, client_id) is not None:
        raise ClientError(f"client_id {client_id} exists already")
    secret = None if auth_method in ("none", "private_key_jwt") else new_client_secret()
    client = Client(
        client_id=client_id, name=name, description=description,
        home_url=check_page_url(home_url, "home URL"),
        client_secret_hash=hash_client_secret(secret) if secret else None,
        redirect_uris=[check_uri(u, "redirect URI") for u in redirect_uris],
        post_logout_redirect_uris=[check_uri(u, "post-logout redirect URI")
                                   for u in (post_logout_redirect_uris or [])],
        grant_types=list(grant_types),
        response_types=["code"] if "authorization_code" in grant_types else [],
        scope=" ".join(scopes), token_endpoint_auth_method=auth_method,
        subject_type=subject_type, sector_identifier=sector_identifier,
        require_consent=require_consent, jwks=jwks, require_pkce=require_pkce,
        backchannel_logout_uri=check_uri(backchannel_logout_uri, "back-channel logout URI")
        if backchannel_logout_uri else None,
        frontchannel_logout_uri=check_uri(frontchannel_logout_uri, "front-channel logout URI")
        if frontchannel_logout_uri else None,
        id_token_signed_response_alg=id_token_signed_response_alg)
    session.add(client)
    session.flush()
    return client, secret


def rotate_secret(session: Session, client: Client) -> str:
    if client.token_endpoint_auth_method not in ("client_secret_basic", "client_secret_post"):
        raise ClientError("this client does not authenticate with a secret")
    secret = new_client_secret()
    client.client_secret_hash = hash_client_secret(secret)
    client.secret_rotated_at = utcnow()
    return secret


def delete_client(session: Session, client: Client) -> None:
    for grant in session.scalars(select(Grant).where(Grant.client_id == client.client_id)):
        session.delete(grant)
    for consent in session.scalars(select(Consent).where(Consent.client_id == client.client_id)):
        session.delete(consent)
    session.delete(client)


def describe(client: Client, secret: str | None = None) -> dict:
    data = {
        "client_id": client.client_id, "client_secret": secret, "name": client.name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types, "scope": client.scope,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "subject_type": client.subject_type, "require_consent": client.require_consent,
        "require_pkce": client.require_pkce,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "frontchannel_logout_uri": client.frontchannel_logout_uri,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "public": client.is_public, "created_at": client.created_at.isoformat(),
    }
    return data


def list_clients(session: Session) -> list[Client]:
    return list(session.scalars(select(Client).order_by(Client.created_at)))

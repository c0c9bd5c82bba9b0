from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import urlsplit

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


def hash_client_secret(secret: str) -> str:
    # Client secrets are 256-bit random values: a plain SHA-256 is enough, and fast.
    return hashlib.sha256(secret.encode()).hexdigest()


class Client(Base):
    """A relying party (démarche app) or a service client. Implements Authlib's ClientMixin."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    home_url: Mapped[str] = mapped_column(String(500), default="")
    redirect_uris: Mapped[list] = mapped_column(default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(default=list)
    grant_types: Mapped[list] = mapped_column(default=lambda: ["authorization_code", "refresh_token"])
    response_types: Mapped[list] = mapped_column(default=lambda: ["code"])
    scope: Mapped[str] = mapped_column(Text, default="openid profile email phone address")
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32), default="client_secret_basic")
    subject_type: Mapped[str] = mapped_column(String(16), default="public")
    sector_identifier: Mapped[str | None] = mapped_column(String(255))
    # First-party clients get no consent screen.
    require_consent: Mapped[bool] = mapped_column(Boolean, default=True)
    jwks: Mapped[dict | None] = mapped_column(default=None)
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(16))
    # OIDC Back-Channel Logout 1.0 and Front-Channel Logout 1.0: where the client hears
    # that a session it signed in through has ended.
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    # PKCE (S256) on every authorization request (RFC 9700 §2.1.1); public clients
    # always need it, a confidential one only while this is on (off: old clients).
    require_pkce: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # Shown in the catalogue of "Mon compte".
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    secret_rotated_at: Mapped[dt.datetime | None]
    # Disabled by an administrator: refused at every endpoint (``invalid_client``), its
    # access tokens inactive, until enabled again.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Registered through the registration endpoint (RFC 7591): the initial access token
    # it came with, and the SHA-256 of its registration access token (RFC 7592).
    initial_access_token_id: Mapped[str | None] = mapped_column(String(36))
    registration_token_hash: Mapped[str | None] = mapped_column(String(64))

    # -- Authlib ClientMixin ------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC requires redirect_uri; only a single-URI client gets a default.
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.scope.split()
        if not scope:
            return " ".join(allowed)
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string comparison (RFC 9700 §4.1.3): no prefix or pattern matching.
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.client_secret_hash or not isinstance(client_secret, str):
            return False
        return hmac.compare_digest(self.client_secret_hash, hash_client_secret(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method == "client_assertion_jwt":
            method = "private_key_jwt"
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    # -- helpers --------------------------------------------------------------
    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def sector(self) -> str:
        """Pairwise sector: explicit, or the host of the redirect URIs."""
        if self.sector_identifier:
            return self.sector_identifier
        hosts = {urlsplit(u).hostname or "" for u in self.redirect_uris}
        return sorted(hosts)[0] if hosts else self.client_id

    def __repr__(self) -> str:
        return f"<Client {self.client_id}>"

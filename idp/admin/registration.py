"""Dynamic client registration (RFC 7591) and management (RFC 7592), as Authlib
endpoints registered on the application's authorization server.

Registration is open only with an initial access token issued by an administrator
(:mod:`idp.admin.initial_tokens`). The metadata a client sends is checked by the rules
of the console and the command line: redirect URIs by :func:`idp.admin.clients.check_uri`
(https outside the loopback, no fragment, no wildcard), its home page by
:func:`idp.admin.clients.check_page_url`, the rest by
:func:`idp.admin.clients.create_client`. A registered client gets a registration access
token (stored as its SHA-256) with which it reads, updates and deletes its
registration at ``/register/<client_id>``.

What a registered client may not change afterwards (its authentication method, grant
types, subject type, ID token algorithm) is refused with ``invalid_client_metadata``:
it registers anew instead. A dynamically registered client always shows the consent
screen and is not listed in the catalogue of "Mon compte" until an administrator says so.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc7591 import ClientMetadataClaims as RFC7591Claims
from authlib.oauth2.rfc7591 import (ClientRegistrationEndpoint, InvalidClientMetadataError,
                                    InvalidRedirectURIError)
from authlib.oauth2.rfc7592 import ClientConfigurationEndpoint
from flask import request as flask_request
from flask import url_for
from sqlalchemy.orm import Session

from ..oidc.endpoints.discovery import build_metadata
from ..persistence.models import Client, hash_client_secret
from ..security.audit import record_event
from ..services import Services, client_ip, user_agent
from . import clients as registry
from . import initial_tokens

REALM = "registration"
MAX_URIS = 20
MAX_NAME_LENGTH = 200
# Metadata a client may send that this provider does not implement: refused rather than
# ignored, since a client relying on it would be silently less protected.
UNSUPPORTED = ("jwks_uri", "sector_identifier_uri", "request_uris", "software_statement",
               "id_token_encrypted_response_alg", "id_token_encrypted_response_enc",
               "userinfo_signed_response_alg", "userinfo_encrypted_response_alg",
               "userinfo_encrypted_response_enc", "request_object_signing_alg",
               "request_object_encryption_alg", "request_object_encryption_enc",
               "tls_client_certificate_bound_access_tokens")
# Fixed at registration (RFC 7592 §2.2 lets the server refuse to change a value).
FIXED = ("token_endpoint_auth_method", "grant_types", "response_types", "subject_type",
         "id_token_signed_response_alg")
AUTH_METHODS_WITHOUT_SECRET = ("none", "private_key_jwt")


def safe_description(text: str) -> str:
    """An ``error_description`` holds printable ASCII but ``"`` and ``\\`` (RFC 6749
    §4.1.2.1); a message that quotes what the client sent is cut down to that."""
    bad = set(invalid_error_characters(text))
    return "".join(ch for ch in text if ch not in bad)[:300]


def _metadata_error(message: str) -> InvalidClientMetadataError:
    return InvalidClientMetadataError(description=safe_description(message))


def _has_control_characters(value: Any) -> bool:
    if isinstance(value, str):
        return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    if isinstance(value, dict):
        return any(_has_control_characters(k) or _has_control_characters(v)
                   for k, v in value.items())
    if isinstance(value, list):
        return any(_has_control_characters(v) for v in value)
    return False


class RegistrationClaims(RFC7591Claims):
    """RFC 7591 metadata, the OIDC metadata this provider implements, and the project's
    rules for redirect URIs. Authlib's own checks run first (types of URLs, ``jwks``
    without private keys, values among those the discovery document announces)."""

    # What is stored, hence registered and returned; the other RFC 7591 fields (logo,
    # contacts, policy...) are checked by Authlib and then ignored, as §2 allows.
    REGISTERED_CLAIMS = ["client_name", "redirect_uris", "post_logout_redirect_uris",
                         "grant_types", "response_types", "token_endpoint_auth_method",
                         "scope", "client_uri", "jwks", "subject_type",
                         "id_token_signed_response_alg", "backchannel_logout_uri",
                         "frontchannel_logout_uri"]

    def validate(self, now=None, leeway=0):
        for name in UNSUPPORTED:
            if self.get(name) not in (None, "", []):
                raise _metadata_error(f"{name} is not supported by this provider")
        self._check_types()  # before Authlib's checks, which expect the right types
        super().validate(now, leeway)
        self._check_redirect_uris("redirect_uris")
        self._check_redirect_uris("post_logout_redirect_uris")
        self._check_consistency()

    def validate_redirect_uris(self):
        pass  # by the project's rules, in validate (invalid_redirect_uri, not Authlib's)

    def _check_types(self) -> None:
        name = self.get("client_name")
        if not isinstance(name, str) or not name.strip() \
                or len(name.strip()) > MAX_NAME_LENGTH:
            raise _metadata_error(f"client_name of 1 to {MAX_NAME_LENGTH} characters "
                                  "is required")
        for key in ("client_uri", "logo_uri", "tos_uri", "policy_uri", "scope",
                    "token_endpoint_auth_method", "subject_type",
                    "id_token_signed_response_alg", "software_id", "software_version",
                    "backchannel_logout_uri", "frontchannel_logout_uri"):
            if key in self and not isinstance(self[key], str):
                raise _metadata_error(f"{key} must be a string")
        for key in ("backchannel_logout_session_required",
                    "frontchannel_logout_session_required"):
            # The provider always sends sid (discovery: *_logout_session_supported).
            if key in self and not isinstance(self[key], bool):
                raise _metadata_error(f"{key} must be a boolean")
        if "jwks" in self and not isinstance(self["jwks"], dict):
            raise _metadata_error("jwks must be a JSON Web Key Set")
        for key in ("grant_types", "response_types", "contacts"):
            if key in self and not (isinstance(self[key], list)
                                    and all(isinstance(v, str) for v in self[key])):
                raise _metadata_error(f"{key} must be an array of strings")
        try:
            registry.check_page_url(self.get("client_uri") or "", "client_uri")
            for key in ("backchannel_logout_uri", "frontchannel_logout_uri"):
                if self.get(key):
                    registry.check_uri(self[key], key)
        except registry.ClientError as exc:
            raise _metadata_error(str(exc)) from None

    def _check_redirect_uris(self, key: str) -> None:
        uris = self.get(key)
        if uris is None:
            return
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise InvalidRedirectURIError(description=f"{key} must be an array of strings")
        if len(uris) > MAX_URIS:
            raise InvalidRedirectURIError(description=f"{key}: {MAX_URIS} URIs at most")
        for index, uri in enumerate(uris):
            try:
                registry.check_uri(uri, f"{key}[{index}]")
            except registry.ClientError as exc:
                raise InvalidRedirectURIError(description=safe_description(str(exc))) from None

    def _check_consistency(self) -> None:
        """RFC 7591 §2.1: ``code`` goes with ``authorization_code``."""
        grant_types = self.get("grant_types") or ["authorization_code"]
        response_types = self.get("response_types")
        if response_types is None:
            response_types = ["code"] if "authorization_code" in grant_types else []
        if ("code" in response_types) != ("authorization_code" in grant_types):
            raise _metadata_error("response_types code goes with grant_types "
                                  "authorization_code")
        if "authorization_code" in grant_types and not self.get("redirect_uris"):
            raise InvalidRedirectURIError(
                description="redirect_uris is required for authorization_code")


def registration_metadata(client: Client, default_id_token_alg: str) -> dict[str, Any]:
    """What is registered for ``client``, as RFC 7591 §2 names it (no secret)."""
    data: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "scope": client.scope,
        "subject_type": client.subject_type,
        "id_token_signed_response_alg": client.id_token_signed_response_alg
        or default_id_token_alg,
    }
    if client.client_secret_hash:
        data["client_secret_expires_at"] = 0
    if client.home_url:
        data["client_uri"] = client.home_url
    for key in ("backchannel_logout_uri", "frontchannel_logout_uri"):
        if getattr(client, key):
            data[key] = getattr(client, key)
    if client.jwks:
        data["jwks"] = client.jwks
    return data


def new_registration_token() -> str:
    return secrets.token_urlsafe(32)


def _bearer(request) -> str | None:
    scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def _audit(session: Session, type_: str, *, outcome: str = "success",
           client_id: str | None = None, **details: Any) -> None:
    record_event(session, type_, outcome=outcome, client_id=client_id,
                 ip_address=client_ip(), user_agent=user_agent(),
                 details={"via": "registration", **details})


class _Endpoint:
    """What both endpoints share: the services, the server's metadata, the responses."""

    server: Any

    @property
    def ctx(self) -> Services:
        return self.server.ctx

    @property
    def session(self) -> Session:
        return self.ctx.db.session

    def get_server_metadata(self) -> dict[str, Any]:
        return build_metadata(self.ctx.settings)

    def extract_client_metadata(self, request):
        data = request.payload.data
        if not isinstance(data, dict):
            raise _metadata_error("the body must be a JSON object")
        if _has_control_characters(data):
            raise _metadata_error("control characters are not allowed in metadata")
        return super().extract_client_metadata(request)

    def registration_info(self, client: Client, token: str) -> dict[str, Any]:
        return {
            **registration_metadata(client, self.ctx.settings.tokens.id_token_alg),
            "registration_client_uri": self.ctx.settings.issuer + url_for(
                "oidc.client_configuration", client_id=client.client_id),
            "registration_access_token": token,
        }


class RegistrationEndpoint(_Endpoint, ClientRegistrationEndpoint):
    """``POST /register`` (RFC 7591 §3), with an initial access token."""

    def __init__(self, server=None) -> None:
        super().__init__(server, claims_classes=[RegistrationClaims])

    def authenticate_token(self, request):
        value = _bearer(request)
        if value is None:
            raise InvalidTokenError(description="An initial access token is required.",
                                    realm=REALM)
        redemption = initial_tokens.redeem(self.session, value)
        # For the audit trail, whatever happens next (idp.oidc.client_errors).
        request.audit_details = {"initial_access_token_id": redemption.token_id}
        if not redemption.ok:
            request.audit_details["reason"] = redemption.refusal
            raise InvalidTokenError(
                description="The initial access token is unknown, expired, revoked or "
                            "used up.", realm=REALM)
        return redemption

    def generate_client_id(self, request):
        return registry.new_client_id()

    def generate_client_secret(self, request):
        return registry.new_client_secret()

    def generate_client_info(self, request):
        info = super().generate_client_info(request)
        method = request.payload.data.get("token_endpoint_auth_method")
        if method in AUTH_METHODS_WITHOUT_SECRET:
            info.pop("client_secret")
            info.pop("client_secret_expires_at")
        return info

    def save_client(self, client_info, client_metadata, request):
        auth_method = client_metadata.get("token_endpoint_auth_method", "client_secret_basic")
        scope = client_metadata.get("scope")
        try:
            client, _ = registry.create_client(
                self.session, client_id=client_info["client_id"],
                name=client_metadata["client_name"].strip(),
                redirect_uris=list(client_metadata.get("redirect_uris") or []),
                post_logout_redirect_uris=list(
                    client_metadata.get("post_logout_redirect_uris") or []),
                auth_method=auth_method, public=auth_method == "none",
                grant_types=client_metadata.get("grant_types") or ["authorization_code"],
                scopes=scope.split() if scope else None,
                require_consent=True,
                subject_type=client_metadata.get("subject_type") or "public",
                jwks=client_metadata.get("jwks"),
                home_url=client_metadata.get("client_uri") or "",
                id_token_signed_response_alg=client_metadata.get(
                    "id_token_signed_response_alg"),
                backchannel_logout_uri=client_metadata.get("backchannel_logout_uri"),
                frontchannel_logout_uri=client_metadata.get("frontchannel_logout_uri"))
        except registry.ClientError as exc:
            raise _metadata_error(str(exc)) from None
        secret = client_info.get("client_secret")
        client.client_secret_hash = hash_client_secret(secret) if secret else None
        client.listed = False
        client.initial_access_token_id = request.credential.token_id
        token = new_registration_token()
        client.registration_token_hash = initial_tokens.token_digest(token)
        request.registration_access_token = token
        _audit(self.session, "client.registered", client_id=client.client_id,
               initial_access_token_id=request.credential.token_id)
        self.session.commit()
        return client

    def generate_client_registration_info(self, client, request):
        return self.registration_info(client, request.registration_access_token)


class ConfigurationToken:
    """A registration access token shown for the client it was issued to."""

    def __init__(self, client: Client, value: str) -> None:
        self.client = client
        self.value = value

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client.client_id


class ConfigurationEndpoint(_Endpoint, ClientConfigurationEndpoint):
    """``GET``, ``PUT`` and ``DELETE /register/<client_id>`` (RFC 7592 §2), with the
    client's registration access token."""

    def __init__(self, server=None) -> None:
        super().__init__(server, claims_classes=[RegistrationClaims])

    def _path_client(self) -> Client | None:
        client_id = (flask_request.view_args or {}).get("client_id", "")
        if not 0 < len(client_id) <= 64:
            return None
        return self.session.get(Client, client_id)

    def authenticate_token(self, request):
        # Checked against the client of the URL: another client's token, or a client
        # registered in the console (no such token), are refused alike (RFC 6750).
        value = _bearer(request)
        client = self._path_client()
        stored = client.registration_token_hash if client is not None else None
        if value is None or stored is None or not hmac.compare_digest(
                stored, initial_tokens.token_digest(value)):
            raise InvalidTokenError(description="The registration access token is not "
                                                "valid for this client.", realm=REALM)
        return ConfigurationToken(client, value)

    def authenticate_client(self, request):
        return request.credential.client

    def revoke_access_token(self, request, token):
        pass  # the token is a column of its client's row: gone with the row

    def check_permission(self, client, request):
        # A client an administrator disabled may not read or change its registration.
        return not client.disabled

    def introspect_client(self, client):
        return registration_metadata(client, self.ctx.settings.tokens.id_token_alg)

    def generate_client_registration_info(self, client, request):
        return self.registration_info(client, request.credential.value)

    def extract_client_metadata(self, request):
        # What may not change is compared with the registration, then taken from it when
        # omitted (instead of the defaults of a new registration).
        data = request.payload.data
        if isinstance(data, dict):
            current = registration_metadata(request.credential.client,
                                            self.ctx.settings.tokens.id_token_alg)
            for key in FIXED:
                if key in data and data[key] != current[key]:
                    raise _metadata_error(f"{key} cannot be changed: register a new client")
                data.setdefault(key, current[key])
        return super().extract_client_metadata(request)

    def update_client(self, client, client_metadata, request):
        if client.token_endpoint_auth_method == "private_key_jwt" \
                and not (client_metadata.get("jwks") or {}).get("keys"):
            raise _metadata_error("private_key_jwt needs the client's public keys (jwks)")
        scope = client_metadata.get("scope")
        new = {
            "name": client_metadata["client_name"].strip(),
            "redirect_uris": list(client_metadata.get("redirect_uris") or []),
            "post_logout_redirect_uris": list(
                client_metadata.get("post_logout_redirect_uris") or []),
            "home_url": client_metadata.get("client_uri") or "",
            "scope": " ".join(dict.fromkeys(scope.split())) if scope else client.scope,
            "jwks": client_metadata.get("jwks"),
            "backchannel_logout_uri": client_metadata.get("backchannel_logout_uri") or None,
            "frontchannel_logout_uri": client_metadata.get("frontchannel_logout_uri") or None,
        }
        changed = sorted(key for key, value in new.items() if getattr(client, key) != value)
        for key in changed:
            setattr(client, key, new[key])
        _audit(self.session, "client.updated", client_id=client.client_id, fields=changed)
        self.session.commit()
        self.ctx.clients.forget(client.client_id)
        return client

    def delete_client(self, client, request):
        client_id = client.client_id
        registry.delete_client(self.session, client)
        _audit(self.session, "client.deleted", client_id=client_id)
        self.session.commit()
        self.ctx.clients.forget(client_id)


def install(server) -> None:
    """Register both endpoints on the application's authorization server."""
    server.register_endpoint(RegistrationEndpoint)
    server.register_endpoint(ConfigurationEndpoint)


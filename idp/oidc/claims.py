"""Which claims a client may read, and their values (OIDC Core §5)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Callable

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from ..persistence.models import Client, User

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "family_name", "given_name", "birthdate", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
}

# Scopes a client may be registered for, beyond those above.
PROTOCOL_SCOPES = ("openid", "offline_access")

# Descriptions for the consent screen and "Mon compte" (French msgids, lazy: they are
# translated into the page's language when shown).
CLAIM_LABELS_FR = {
    "name": _l("votre nom complet"), "family_name": _l("votre nom"),
    "given_name": _l("votre prénom"), "birthdate": _l("votre date de naissance"),
    "locale": _l("votre langue"), "updated_at": _l("la date de mise à jour de votre profil"),
    "email": _l("votre adresse e-mail"),
    "email_verified": _l("si votre adresse e-mail est vérifiée"),
    "phone_number": _l("votre numéro de téléphone"),
    "phone_number_verified": _l("si votre numéro de téléphone est vérifié"),
    "address": _l("votre adresse postale"),
    "relations": _l("les personnes et organismes pour lesquels vous agissez (Mes relations)"),
}
SCOPE_LABELS_FR = {
    "profile": _l("Votre identité : nom, prénom, date de naissance"),
    "email": _l("Votre adresse e-mail"),
    "phone": _l("Votre numéro de téléphone"),
    "address": _l("Votre adresse postale"),
    "offline_access": _l("Rester connecté à ce service quand vous n'êtes pas là "
                         "(accès prolongé)"),
    "relations": _l("Les personnes et organismes pour lesquels vous agissez (Mes relations)"),
}

# Extra scope → claims providers registered by other areas (e.g. "relations"). A source
# gets the session to read with and the user: an ORM object, or on the one-statement
# grants a read-only view of its columns (``tokens._UserColumns``), so it reads through
# the session it is given, never through the user's own.
ClaimSource = Callable[[Session, Any], dict[str, Any]]
_EXTRA_CLAIM_SOURCES: dict[str, tuple[tuple[str, ...], ClaimSource]] = {}


def capitalized(label) -> str:
    """A claim's label at the start of a line (the labels are written to follow a verb)."""
    text = str(label)
    return text[:1].upper() + text[1:]


def register_scope(scope: str, claims: tuple[str, ...], source: ClaimSource) -> None:
    _EXTRA_CLAIM_SOURCES[scope] = (claims, source)


def supported_scopes() -> list[str]:
    return [*PROTOCOL_SCOPES, *SCOPE_CLAIMS, *_EXTRA_CLAIM_SOURCES]


def supported_claims() -> list[str]:
    names = ["sub", "iss", "auth_time", "acr", "amr", "sid"]
    for claims in SCOPE_CLAIMS.values():
        names.extend(claims)
    for claims, _ in _EXTRA_CLAIM_SOURCES.values():
        names.extend(claims)
    return names


def subject_for(user_id: str, client: Client, pairwise_salt: str) -> str:
    """``public``: the user id. ``pairwise``: a per-sector hash, so that clients of two
    sectors cannot correlate a user (OIDC Core §8.1)."""
    if client.subject_type != "pairwise":
        return user_id
    digest = hashlib.sha256(f"{client.sector}|{user_id}|{pairwise_salt}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class ClaimsRequestError(ValueError):
    pass


def parse_claims_request(raw: str | None) -> dict | None:
    """The ``claims`` request parameter (OIDC Core §5.5), validated."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise ClaimsRequestError("claims is not valid JSON") from None
    if not isinstance(value, dict):
        raise ClaimsRequestError("claims must be a JSON object")
    for member in value:
        if member not in ("userinfo", "id_token"):
            raise ClaimsRequestError(f"unknown claims member {member}")
        if value[member] is not None and not isinstance(value[member], dict):
            raise ClaimsRequestError(f"claims.{member} must be an object")
    return value


def scope_claims(scope: str) -> set[str]:
    """The claims the scopes of ``scope`` (space-separated) stand for."""
    names: set[str] = set()
    for name in scope.split():
        names.update(SCOPE_CLAIMS.get(name, ()))
        if name in _EXTRA_CLAIM_SOURCES:
            names.update(_EXTRA_CLAIM_SOURCES[name][0])
    return names


def individual_claims(claims_request: dict | None, scope: str,
                      registered_scope: str) -> list[str]:
    """Claims asked one by one in the ``claims`` parameter beyond what ``scope`` covers,
    among those the client's registered scopes allow: each needs its own consent."""
    if not claims_request:
        return []
    asked: set[str] = set()
    for target in ("userinfo", "id_token"):
        if isinstance(claims_request.get(target), dict):
            asked.update(claims_request[target])
    return sorted((asked & scope_claims(registered_scope)) - scope_claims(scope))


def claims_for(scope: str, claims_request: dict | None, target: str,
               granted_claims: list[str] | None = None) -> set[str]:
    """Names of the claims to release to ``target`` ("userinfo" or "id_token").

    Scope claims go to userinfo; claims named in the ``claims`` parameter go where they
    were asked, when the granted scope covers them or the user consented to them one by
    one (``granted_claims``)."""
    scope_covered = scope_claims(scope)
    allowed = scope_covered | set(granted_claims or ())
    names = set(scope_covered) if target == "userinfo" else set()
    if claims_request and isinstance(claims_request.get(target), dict):
        names.update(n for n in claims_request[target] if n in allowed)
    return names


def user_claims(user: User, names: set[str], session: Session) -> dict[str, Any]:
    """The values of the claims ``names`` for ``user``; ``session`` is the one a
    registered claim source reads with."""
    claims: dict[str, Any] = {}
    values: dict[str, Any] = {
        "name": user.name or None,
        "given_name": user.given_name or None,
        "family_name": user.family_name or None,
        "birthdate": user.birthdate.isoformat() if user.birthdate else None,
        "locale": user.locale,
        "updated_at": int(user.updated_at.timestamp()) if user.updated_at else None,
        "email": user.email,
        "email_verified": bool(user.email_verified),
        "phone_number": user.phone_number,
        "phone_number_verified": bool(user.phone_number_verified) if user.phone_number else None,
    }
    for name in names:
        if name == "address":
            address = {k: v for k, v in {
                "street_address": user.street_address, "postal_code": user.postal_code,
                "locality": user.locality, "country": user.country}.items() if v}
            if address:
                lines = [user.street_address or "",
                         " ".join(filter(None, [user.postal_code, user.locality])),
                         user.country or ""]
                address["formatted"] = "\n".join(line for line in lines if line)
                claims["address"] = address
        elif values.get(name) is not None:
            claims[name] = values[name]
    for claim_names, source in _EXTRA_CLAIM_SOURCES.values():
        if names & set(claim_names):
            claims.update({k: v for k, v in source(session, user).items() if k in names})
    return claims

"""What the revocation and introspection endpoints find behind a token string."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ...persistence import consumables
from ...persistence.models import Client, Consumable, Grant, utcnow
from ..grants import REFRESH_TOKEN


@dataclass
class AccessTokenRef:
    claims: dict[str, Any]
    active: bool

    kind = "access_token"

    @property
    def client_id(self) -> str:
        return self.claims.get("client_id", "")

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def is_expired(self) -> bool:
        return self.claims["exp"] <= time.time()

    def is_revoked(self) -> bool:
        return not self.active


@dataclass
class RefreshTokenRef:
    item: Consumable
    grant: Grant | None
    # False while an administrator has disabled the token's client.
    client_enabled: bool = True

    kind = "refresh_token"

    @property
    def client_id(self) -> str:
        return self.item.client_id or ""

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def is_expired(self) -> bool:
        return self.item.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return (self.item.revoked_at is not None or self.item.consumed_at is not None
                or self.grant is None or self.grant.revoked_at is not None
                or not self.client_enabled)


def find_token(ctx, value: str, hint: str | None) -> AccessTokenRef | RefreshTokenRef | None:
    if not isinstance(value, str) or not value or len(value) > 4096:
        return None
    # A JWT is an access token whatever the hint says (RFC 7009 §2.1: the hint only
    # speeds the lookup up); anything else can only be a refresh token.
    if value.count(".") == 2:
        claims = ctx.tokens.decode_access_token(value)
        if claims is None:
            return None
        session = ctx.db.session
        return AccessTokenRef(claims, ctx.tokens.status(session, claims).active)
    session = ctx.db.session
    row = consumables.find_bearer_with_grant(session, REFRESH_TOKEN, value)
    if row is None:
        return None
    client = ctx.clients.get(session, row[0].client_id) if row[0].client_id else None
    return RefreshTokenRef(*row, client_enabled=client is not None and not client.disabled)

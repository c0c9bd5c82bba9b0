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
                or self.grant is None or self.grant.revoked_at is not None)


def find_token(ctx, value: str, hint: str | None) -> AccessTokenRef | RefreshTokenRef | None:
    if not isinstance(value, str) or not value or len(value) > 4096:
        return None
    session = ctx.db.session
    order = ["refresh_token", "access_token"]
    if hint == "access_token":
        order.reverse()
    for kind in order:
        if kind == "refresh_token":
            item = consumables.find_bearer(session, REFRESH_TOKEN, value)
            if item is not None:
                grant = session.get(Grant, item.grant_id) if item.grant_id else None
                return RefreshTokenRef(item, grant)
        else:
            claims = ctx.tokens.decode_access_token(value)
            if claims is not None:
                return AccessTokenRef(claims, bool(ctx.tokens.is_access_token_active(session, claims)))
    return None

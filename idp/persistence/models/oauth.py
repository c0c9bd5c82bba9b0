from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class Grant(Base):
    """One authorization given to a client: the family of every token minted from one
    authorization code. Revoking it makes every access and refresh token of the family
    inactive (code replay, refresh token reuse, user revocation, password reset)."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"),
                                           index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    sso_session_id: Mapped[str | None] = mapped_column(String(36), index=True)
    auth_time: Mapped[int] = mapped_column(default=0)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list] = mapped_column(default=list)
    claims_request: Mapped[dict | None] = mapped_column(default=None)
    # Claims the user agreed to release one by one, beyond the scope (OIDC Core §5.5).
    claims: Mapped[list] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))


class Consent(Base):
    """What a user agreed that a client may read; remembered per client."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_user_client", "user_id", "client_id", unique=True),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"),
                                           index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    # Claims agreed to one by one, beyond the scope (the claims parameter).
    claims: Mapped[list] = mapped_column(default=list)
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]


class RevokedAccessToken(Base):
    """Access tokens are JWTs: an individual revocation (RFC 7009) is a deny-list entry
    kept until the token would have expired anyway."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class SsoSession(Base):
    """A signed-in browser: one per login, shared by every client it signs in to."""

    __tablename__ = "sso_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    amr: Mapped[list] = mapped_column(default=lambda: ["pwd"])
    acr: Mapped[str] = mapped_column(String(64), default="eidas1")
    # client_ids that received tokens in this session, for logout.
    clients: Mapped[list] = mapped_column(default=list)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    # Last time the password was typed (re-authentication for sensitive actions).
    reauthenticated_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(64))
    # When the clients were told of the end (back-channel logout deliveries queued).
    logout_propagated_at: Mapped[dt.datetime | None]


class LogoutDelivery(Base):
    """A back-channel logout token to deliver to one client (OIDC Back-Channel Logout
    1.0), retried with backoff. It keeps what the token needs (subject as the client
    knows it, session id): the account may be deleted meanwhile."""

    __tablename__ = "logout_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(128))
    sid: Mapped[str] = mapped_column(String(36))
    # For the audit trail only (the account may be gone by then).
    user_id: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[dt.datetime | None]
    abandoned_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

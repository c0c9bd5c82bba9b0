from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class InitialAccessToken(Base):
    """What opens the client registration endpoint (RFC 7591 §3): issued by an
    administrator, shown once, stored as its SHA-256; it expires, may be revoked, and may
    be limited to a number of registrations."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # What it is for ("Portail des aides, recette"), shown to administrators.
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The administrator who issued it (None: the command line).
    created_by: Mapped[str | None] = mapped_column(String(36))
    expires_at: Mapped[dt.datetime]
    # None: any number of registrations until it expires.
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(default=0)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

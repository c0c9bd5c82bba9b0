from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class Flow(Base):
    """A self-service flow (login, registration, recovery, verification, settings) or a
    pending authorization request, modelled after ORY Kratos: an id, a type, a state and
    an expiry. ``return_to`` is where the browser goes when the flow completes (for
    instance back into an authorization request)."""

    __tablename__ = "flows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # Binds the flow to the browser session that started it (hash of the session id).
    browser: Mapped[str | None] = mapped_column(String(64))
    return_to: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)

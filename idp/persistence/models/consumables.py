from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class Consumable(Base):
    """Every single-use artefact: authorization codes, refresh tokens, email links,
    verification and recovery codes, MFA recovery codes.

    ``lookup`` finds the row: the SHA-256 of a bearer value (codes, tokens, links), or an
    owner key for short codes that are checked against ``secret_hash`` (verification codes
    are too short to be looked up by their own hash). Consumption is one atomic UPDATE
    guarded by ``consumed_at IS NULL``, so two concurrent uses cannot both succeed.
    """

    __tablename__ = "consumables"
    __table_args__ = (Index("ix_consumables_kind_lookup", "kind", "lookup"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    lookup: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                index=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    grant_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # What a code is bound to: e.g. "email:new@example.org" or "phone:+33612345678".
    destination: Mapped[str | None] = mapped_column(String(400))
    data: Mapped[dict] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    consumed_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

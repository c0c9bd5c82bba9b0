from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, new_id, utcnow


class Relation(Base):
    """A person or an organisation the user acts for ("Mes relations").

    ``kind`` is "person" (child, spouse, parent...: names, birth date, relationship) or
    "organisation" (association, company: name, SIRET or RIDET, the user's role)."""

    __tablename__ = "relations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # person | organisation
    # person
    relationship: Mapped[str | None] = mapped_column(String(16))  # child|spouse|parent|other
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    birthdate: Mapped[dt.date | None]
    # organisation
    organisation_name: Mapped[str | None] = mapped_column(String(300))
    identifier_type: Mapped[str | None] = mapped_column(String(8))  # siret | ridet
    identifier: Mapped[str | None] = mapped_column(String(20))
    role: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Relation {self.id} {self.kind}>"

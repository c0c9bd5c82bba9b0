from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, new_id, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Normalised (trimmed, lower-cased); the login identifier.
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[dt.datetime | None]
    given_name: Mapped[str] = mapped_column(String(200), default="")
    family_name: Mapped[str] = mapped_column(String(200), default="")
    # E.164
    phone_number: Mapped[str | None] = mapped_column(String(32))
    phone_number_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_email: Mapped[str | None] = mapped_column(String(320))
    birthdate: Mapped[dt.date | None]
    street_address: Mapped[str | None] = mapped_column(Text)
    postal_code: Mapped[str | None] = mapped_column(String(20))
    locality: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(8), default="fr")
    preferred_contact: Mapped[str] = mapped_column(String(8), default="email")  # email | sms
    notifications_email: Mapped[bool] = mapped_column(Boolean, default=True)
    population: Mapped[str] = mapped_column(String(32), default="usager")
    terms_version: Mapped[str | None] = mapped_column(String(32))
    terms_accepted_at: Mapped[dt.datetime | None]
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    mfa_credentials: Mapped[list["MfaCredential"]] = relationship(
        back_populates="user", cascade="all, delete-orphan")

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()

    @property
    def mfa_enabled(self) -> bool:
        return any(c.confirmed_at is not None for c in self.mfa_credentials)

    def __repr__(self) -> str:  # never the email or hash in logs
        return f"<User {self.id}>"


class MfaCredential(Base):
    """A TOTP secret (kind 'totp'). Recovery codes are consumables."""

    __tablename__ = "mfa_credentials"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="totp")
    secret: Mapped[str] = mapped_column(String(128))
    # Last accepted TOTP time step, so that each code is accepted once.
    last_used_step: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(back_populates="mfa_credentials")

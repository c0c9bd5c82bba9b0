"""The citizen account as a hub: what démarche apps report to "Mon compte" (requests,
their status history and messages, notifications), the document wallet, the
subscriptions to themes, and the subjects by which apps know their users."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, new_id, utcnow


class HubSubject(Base):
    """The ``sub`` an app of a sector received for a user (pairwise subjects cannot be
    reversed): how the hub finds the user an app names."""

    __tablename__ = "hub_subjects"
    __table_args__ = (UniqueConstraint("sector", "subject", name="uq_hub_subjects_sector_subject"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    sector: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HubRequest(Base):
    """A request ("demande") a démarche app filed for a user; only that app changes it."""

    __tablename__ = "hub_requests"
    __table_args__ = (UniqueConstraint("client_id", "number", name="uq_hub_requests_client_number"),
                      Index("ix_hub_requests_user_submitted", "user_id", "submitted_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"),
                                           index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The subject the app named the user by (it reads it back).
    subject: Mapped[str] = mapped_column(String(255))
    number: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    service: Mapped[str] = mapped_column(String(300))
    submitted_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(32))
    expected_days: Mapped[int | None] = mapped_column(Integer)
    link: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    history: Mapped[list["HubRequestStatus"]] = relationship(
        back_populates="request", cascade="all, delete-orphan", passive_deletes=True,
        order_by="HubRequestStatus.created_at")
    messages: Mapped[list["HubMessage"]] = relationship(
        back_populates="request", cascade="all, delete-orphan", passive_deletes=True,
        order_by="HubMessage.created_at")


class HubRequestStatus(Base):
    """One step of a request's status history."""

    __tablename__ = "hub_request_statuses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("hub_requests.id", ondelete="CASCADE"),
                                            index=True)
    status: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    request: Mapped[HubRequest] = relationship(back_populates="history")


class HubMessage(Base):
    """A message about a request, from the service (the app) or from the citizen."""

    __tablename__ = "hub_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("hub_requests.id", ondelete="CASCADE"),
                                            index=True)
    author: Mapped[str] = mapped_column(String(16))  # service | citizen
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # For a service message: when the citizen saw it; for a citizen's: when the app read it.
    read_at: Mapped[dt.datetime | None]

    request: Mapped[HubRequest] = relationship(back_populates="messages")


class HubNotification(Base):
    __tablename__ = "hub_notifications"
    __table_args__ = (Index("ix_hub_notifications_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str | None] = mapped_column(
        ForeignKey("clients.client_id", ondelete="SET NULL"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None]
    # The channels it went out by besides "Mon compte" ("email", "sms").
    sent_by: Mapped[list] = mapped_column(default=list)


class NotificationPreference(Base):
    """How the user wants a category of notifications, besides "Mon compte"."""

    __tablename__ = "hub_notification_preferences"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[bool] = mapped_column(Boolean, default=True)
    sms: Mapped[bool] = mapped_column(Boolean, default=False)


class WalletDocument(Base):
    """A document of the user's wallet; its bytes are encrypted in the wallet storage."""

    __tablename__ = "wallet_documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    document_date: Mapped[dt.date | None]
    kind: Mapped[str] = mapped_column(String(8))  # png | pdf | jpg | dwg
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DocumentGrant(Base):
    """The user's consent for one app to read one document, for a short time. Its bearer
    value is stored as a SHA-256 digest."""

    __tablename__ = "wallet_document_grants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("wallet_documents.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"),
                                           index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    read_at: Mapped[dt.datetime | None]


class Theme(Base):
    """A subscription theme, configured by the administration."""

    __tablename__ = "hub_themes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # a slug
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    __tablename__ = "hub_subscriptions"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    theme_id: Mapped[str] = mapped_column(ForeignKey("hub_themes.id", ondelete="CASCADE"),
                                          primary_key=True, index=True)
    channel: Mapped[str] = mapped_column(String(8), default="email")  # email | sms
    # The user agreed that publishing apps contact them about this theme.
    contact_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HubEvent(Base):
    """An event an app reads through the API (back-channel): today, a deleted account
    (the subject the app knew)."""

    __tablename__ = "hub_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"),
                                           index=True)
    type: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

"""The app's own database (SQLAlchemy): the dossiers, drafts included, and their
attachments."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (JSON, DateTime, ForeignKey, Integer, LargeBinary, String,
                        create_engine, event, select)
from sqlalchemy.orm import (DeclarativeBase, Mapped, Session, mapped_column, relationship,
                            scoped_session, sessionmaker)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, dt.datetime: DateTime}


class Dossier(Base):
    __tablename__ = "dossiers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True,
                                    default=lambda: str(uuid.uuid4()))
    procedure: Mapped[str] = mapped_column(String(32))
    # The user as the provider names them for this app (the ID token's sub).
    user_sub: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32), default="draft")
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    values: Mapped[dict] = mapped_column(default=dict)
    # The relation (from the ``relations`` claim) the user acts for; None: themselves.
    beneficiary: Mapped[dict | None] = mapped_column(default=None)
    hub_request_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[dt.datetime | None]

    attachments: Mapped[list["Attachment"]] = relationship(
        back_populates="dossier", cascade="all, delete-orphan", order_by="Attachment.created_at")

    def attachment(self, piece: str) -> "Attachment | None":
        return next((a for a in self.attachments if a.piece == piece), None)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True,
                                    default=lambda: str(uuid.uuid4()))
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"),
                                            index=True)
    piece: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # upload | wallet
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    dossier: Mapped[Dossier] = relationship(back_populates="attachments")


class Counter(Base):
    """The last administrative number given, per procedure and year."""

    __tablename__ = "counters"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Cursor(Base):
    """How far the app has read the provider's events."""

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def make_session(url: str) -> scoped_session:
    engine = create_engine(url)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(connection, _record):
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA journal_mode=WAL")
    Base.metadata.create_all(engine)
    return scoped_session(sessionmaker(engine, expire_on_commit=False))


def next_number(session: Session, prefix: str) -> str:
    """``AL-2026-00042``: the next number of the procedure this year."""
    year = dt.date.today().year
    key = f"{prefix}-{year}"
    counter = session.get(Counter, key, with_for_update=True)
    if counter is None:
        counter = Counter(key=key, value=0)
        session.add(counter)
    counter.value += 1
    session.flush()
    return f"{key}-{counter.value:05d}"


def user_dossiers(session: Session, sub: str) -> list[Dossier]:
    return list(session.scalars(select(Dossier).where(Dossier.user_sub == sub)
                                .order_by(Dossier.updated_at.desc())))


def submitted(session: Session) -> list[Dossier]:
    return list(session.scalars(select(Dossier).where(Dossier.status != "draft")
                                .order_by(Dossier.submitted_at.desc())))


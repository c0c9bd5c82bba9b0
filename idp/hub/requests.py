"""Requests ("Mes demandes"): filed and updated by the app that handles them, read and
answered by the citizen in "Mon compte"."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..persistence.models import (Client, HubMessage, HubRequest, HubRequestStatus, User,
                                  utcnow)
from . import HubError
from .validation import app_link, integer, invalid, text, timestamp

# The statuses an app may give a request, with their label in "Mon compte".
STATUSES = {
    "submitted": _l("Déposée"),
    "in_progress": _l("En cours d'instruction"),
    "awaiting_citizen": _l("En attente de compléments"),
    "accepted": _l("Acceptée"),
    "rejected": _l("Refusée"),
    "closed": _l("Clôturée"),
}
# Statuses after which nothing is expected of the administration.
FINAL_STATUSES = ("accepted", "rejected", "closed")
MAX_MESSAGE = 5000
MAX_MESSAGES_PER_REQUEST = 500


def status_label(status: str) -> str:
    return str(STATUSES.get(status, status))


def _status(data: dict[str, Any], default: str | None) -> str | None:
    value = data.get("status", default)
    if value is None:
        return None
    if value not in STATUSES:
        raise invalid("status", "one of " + ", ".join(STATUSES))
    return value


def create_request(session: Session, client: Client, user: User, subject: str,
                   data: dict[str, Any]) -> HubRequest:
    """File a request for ``user`` (whom ``client`` knows as ``subject``)."""
    number = text(data, "number", 64)
    request = HubRequest(
        client_id=client.client_id, user_id=user.id, subject=subject, number=number,
        title=text(data, "title", 300), service=text(data, "service", 300),
        submitted_at=timestamp(data, "submitted_at") or utcnow(),
        status=_status(data, "submitted"),
        expected_days=integer(data, "expected_days", 0, 3650),
        link=app_link(data, "link", client))
    if session.scalar(select(HubRequest.id).where(HubRequest.client_id == client.client_id,
                                                  HubRequest.number == number)):
        raise HubError("conflict", "a request with this number already exists", 409)
    request.history.append(HubRequestStatus(
        status=request.status, comment=text(data, "comment", 2000, required=False,
                                             multiline=True)))
    session.add(request)
    try:
        session.flush()
    except IntegrityError:  # the same number, filed at the same moment
        session.rollback()
        raise HubError("conflict", "a request with this number already exists", 409) from None
    return request


def owned_request(session: Session, client: Client, request_id: str) -> HubRequest:
    """The request ``request_id`` of ``client``; another app's is refused as unknown."""
    request = session.get(HubRequest, request_id) if isinstance(request_id, str) else None
    if request is None:
        raise HubError("not_found", "no such request", 404)
    if request.client_id != client.client_id:
        raise HubError("forbidden", "this request belongs to another app", 403)
    return request


def update_request(session: Session, client: Client, request: HubRequest,
                   data: dict[str, Any]) -> bool:
    """Change what the app sends; a new status goes to the history. True when the
    status changed."""
    for field, size in (("title", 300), ("service", 300)):
        if field in data:
            setattr(request, field, text(data, field, size))
    if "expected_days" in data:
        request.expected_days = integer(data, "expected_days", 0, 3650)
    if "link" in data:
        request.link = app_link(data, "link", client)
    status = _status(data, None)
    comment = text(data, "comment", 2000, required=False, multiline=True)
    changed = status is not None and status != request.status
    if changed or (status is not None and comment):
        request.status = status
        request.history.append(HubRequestStatus(status=status, comment=comment))
    request.updated_at = utcnow()
    return changed


def add_message(session: Session, request: HubRequest, author: str, body: Any) -> HubMessage:
    body = text({"body": body}, "body", MAX_MESSAGE, multiline=True)
    count = session.scalar(select(func.count()).select_from(HubMessage).where(
        HubMessage.request_id == request.id))
    if count >= MAX_MESSAGES_PER_REQUEST:
        raise HubError("limit_reached", "too many messages on this request", 409)
    message = HubMessage(author=author, body=body)
    request.messages.append(message)
    request.updated_at = utcnow()
    return message


def mark_read(request: HubRequest, author: str) -> int:
    """Mark the messages of ``author`` read (by the other side); how many were unread."""
    now, count = utcnow(), 0
    for message in request.messages:
        if message.author == author and message.read_at is None:
            message.read_at = now
            count += 1
    return count


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def message_as_dict(message: HubMessage) -> dict[str, Any]:
    return {"id": message.id, "author": message.author, "body": message.body,
            "created_at": _iso(message.created_at), "read_at": _iso(message.read_at)}


def request_as_dict(request: HubRequest, *, with_messages: bool = True) -> dict[str, Any]:
    item = {
        "id": request.id, "sub": request.subject, "number": request.number,
        "title": request.title, "service": request.service,
        "submitted_at": _iso(request.submitted_at), "status": request.status,
        "expected_days": request.expected_days, "link": request.link or None,
        "history": [{"status": h.status, "comment": h.comment or None,
                     "at": _iso(h.created_at)} for h in request.history],
        "created_at": _iso(request.created_at), "updated_at": _iso(request.updated_at),
    }
    if with_messages:
        item["messages"] = [message_as_dict(m) for m in request.messages]
    return item


def user_requests(session: Session, user_id: str, *, query: str = "", status: str = "",
                  client_id: str = "") -> list[tuple[HubRequest, Client]]:
    """The user's requests, newest first, with their app; filtered by a text in the
    title or number, a status, an app."""
    statement = select(HubRequest, Client).join(
        Client, Client.client_id == HubRequest.client_id).where(HubRequest.user_id == user_id)
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(or_(HubRequest.title.ilike(pattern, escape="\\"),
                                        HubRequest.number.ilike(pattern, escape="\\")))
    if status in STATUSES:
        statement = statement.where(HubRequest.status == status)
    if client_id:
        statement = statement.where(HubRequest.client_id == client_id)
    return list(session.execute(statement.order_by(HubRequest.submitted_at.desc(),
                                                   HubRequest.id)).all())


def unread_messages(session: Session, user_id: str) -> int:
    return session.scalar(select(func.count()).select_from(HubMessage).join(
        HubRequest, HubRequest.id == HubMessage.request_id).where(
        HubRequest.user_id == user_id, HubMessage.author == "service",
        HubMessage.read_at.is_(None))) or 0


def app_requests(session: Session, client: Client, subject: str | None = None,
                 limit: int = 100) -> list[HubRequest]:
    statement = select(HubRequest).where(HubRequest.client_id == client.client_id)
    if subject:
        statement = statement.where(HubRequest.subject == subject)
    return list(session.scalars(statement.order_by(HubRequest.created_at.desc()).limit(limit)))

"""Notifications: pushed by apps, shown in "Mon compte", sent by e-mail or SMS as the
user chose for their category, within limits per app."""

from __future__ import annotations

import logging
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..config import Settings
from ..messaging import EmailMessage, SmsMessage, render_message, render_sms
from ..messaging.base import Purpose
from ..persistence.models import Client, HubNotification, NotificationPreference, User, utcnow
from ..security.ratelimit import RateLimited, count, parse_limits
from . import HubError
from .validation import app_link, invalid, text

log = logging.getLogger(__name__)

CATEGORIES = {
    "requests": _l("Suivi de mes demandes"),
    "messages": _l("Messages des services"),
    "reminders": _l("Rappels et échéances"),
    "information": _l("Informations"),
}
# The categories sent by e-mail unless the user says otherwise (SMS: only when asked).
EMAIL_BY_DEFAULT = ("requests", "messages", "reminders")


def preferences(session: Session, user: User) -> dict[str, dict[str, bool]]:
    """``{category: {"email": bool, "sms": bool}}`` for every category."""
    stored = {p.category: p for p in session.scalars(select(NotificationPreference).where(
        NotificationPreference.user_id == user.id))}
    result = {}
    for category in CATEGORIES:
        pref = stored.get(category)
        result[category] = {
            "email": pref.email if pref else (user.notifications_email
                                              and category in EMAIL_BY_DEFAULT),
            "sms": pref.sms if pref else False}
    return result


def set_preferences(session: Session, user: User, wanted: dict[str, dict[str, bool]]) -> None:
    stored = {p.category: p for p in session.scalars(select(NotificationPreference).where(
        NotificationPreference.user_id == user.id))}
    for category in CATEGORIES:
        choice = wanted.get(category, {})
        pref = stored.get(category)
        if pref is None:
            pref = NotificationPreference(user_id=user.id, category=category)
            session.add(pref)
        pref.email = bool(choice.get("email"))
        pref.sms = bool(choice.get("sms"))


def _check_limits(kv, settings: Settings, client: Client, user: User) -> None:
    wait = 0
    if settings.rate_limits.enabled:
        for limit in parse_limits(settings.hub.notifications_per_client):
            wait = max(wait, count(kv, "hub-notify-client", client.client_id, limit))
        for limit in parse_limits(settings.hub.notifications_per_user):
            wait = max(wait, count(kv, "hub-notify-user", f"{client.client_id}|{user.id}",
                                   limit))
    if wait:
        raise RateLimited("hub-notify", wait)


def parse_notification(data: dict[str, Any], client: Client) -> dict[str, Any]:
    category = data.get("category", "information")
    if category not in CATEGORIES:
        raise invalid("category", "one of " + ", ".join(CATEGORIES))
    return {"category": category, "title": text(data, "title", 200),
            "body": text(data, "body", 2000, required=False, multiline=True),
            "link": app_link(data, "link", client)}


def create_notification(session: Session, kv, settings: Settings, client: Client | None,
                        user: User, values: dict[str, Any]) -> HubNotification:
    """Store a notification (counted against the app's limits; the sending is
    :func:`deliver`, once it is committed)."""
    if client is not None:
        try:
            _check_limits(kv, settings, client, user)
        except RateLimited as exc:
            raise HubError("rate_limited", f"notification limit reached, retry in "
                           f"{exc.retry_after} s", 429) from exc
    notification = HubNotification(user_id=user.id,
                                   client_id=client.client_id if client else None, **values)
    session.add(notification)
    session.flush()
    return notification


def deliver(session: Session, messenger, settings: Settings, user: User,
            notification: HubNotification, app_name: str, account_url: str) -> list[str]:
    """Send the notification by the channels the user chose for its category; returns
    them (and records them on the notification: commit after)."""
    wanted = preferences(session, user)[notification.category]
    locale = user.locale or settings.default_locale
    context = {"service_name": settings.service_name,
               "organisation_name": settings.organisation_name, "app_name": app_name,
               "title": notification.title, "body": notification.body,
               "link": notification.link, "account_url": account_url}
    sent = []
    if wanted["email"]:
        try:
            subject, body, html = render_message("notification", locale, **context)
        except Exception:  # noqa: BLE001 - a broken template must not lose the notification
            log.exception("cannot render the notification e-mail")
        else:
            # Not a code: the owner's own notice, capped per app above rather than by the
            # guard's code limits (which would let an app use up the user's codes).
            if messenger.send_email(EmailMessage(to=user.contact_email or user.email,
                                                 subject=subject, text=body, html=html),
                                    Purpose.NOTICE):
                sent.append("email")
    if wanted["sms"] and user.phone_number and user.phone_number_verified:
        try:
            sms = render_sms("notification", locale, **context)
        except Exception:  # noqa: BLE001
            log.exception("cannot render the notification SMS")
        else:
            if messenger.send_sms(SmsMessage(to_e164=user.phone_number, text=sms),
                                  Purpose.NOTICE):
                sent.append("sms")
    notification.sent_by = sent
    return sent


def user_notifications(session: Session, user_id: str, limit: int = 100
                       ) -> list[tuple[HubNotification, Client | None]]:
    return list(session.execute(select(HubNotification, Client).outerjoin(
        Client, Client.client_id == HubNotification.client_id).where(
        HubNotification.user_id == user_id).order_by(HubNotification.created_at.desc())
        .limit(limit)).all())


def unread_count(session: Session, user_id: str) -> int:
    return session.scalar(select(func.count()).select_from(HubNotification).where(
        HubNotification.user_id == user_id, HubNotification.read_at.is_(None))) or 0


def mark_read(session: Session, user_id: str, notification_id: str | None = None) -> int:
    """Mark one notification (or all) of the user read; how many changed."""
    statement = update(HubNotification).where(HubNotification.user_id == user_id,
                                              HubNotification.read_at.is_(None))
    if notification_id is not None:
        statement = statement.where(HubNotification.id == notification_id)
    return session.execute(statement.values(read_at=utcnow())
                           .execution_options(synchronize_session=False)).rowcount


def notification_as_dict(notification: HubNotification) -> dict[str, Any]:
    return {"id": notification.id, "category": notification.category,
            "title": notification.title, "body": notification.body or None,
            "link": notification.link or None,
            "created_at": notification.created_at.isoformat(),
            "read": notification.read_at is not None, "sent_by": notification.sent_by}

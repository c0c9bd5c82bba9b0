"""The hub's part of an account's life: the data export, the deletion (which tells the
apps that knew the user), and the events apps read back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..persistence.models import (Client, DocumentGrant, Grant, HubEvent, HubMessage,
                                  HubNotification, HubRequest, HubRequestStatus, HubSubject, NotificationPreference,
                                  Subscription, User, WalletDocument, utcnow)
from .notifications import notification_as_dict, preferences
from .requests import request_as_dict
from .storage import EncryptedStore
from .subjects import subject_of
from .wallet import document_as_dict, user_documents


def export(session: Session, user: User) -> dict[str, Any]:
    """The hub's data of ``user`` for the data export (documents: their description;
    their files are downloaded from the wallet)."""
    names = dict(session.execute(select(Client.client_id, Client.name)).all())
    requests = session.scalars(select(HubRequest).where(HubRequest.user_id == user.id)
                               .order_by(HubRequest.submitted_at))
    return {
        "requests": [{**request_as_dict(r), "application": names.get(r.client_id)}
                     for r in requests],
        "notifications": [{**notification_as_dict(n), "application": names.get(n.client_id)}
                          for n in session.scalars(select(HubNotification).where(
                              HubNotification.user_id == user.id)
                              .order_by(HubNotification.created_at))],
        "notification_preferences": preferences(session, user),
        "documents": [{**document_as_dict(d), "id": d.id, "added_at": d.created_at.isoformat()}
                      for d in user_documents(session, user.id)],
        "subscriptions": [{"theme": s.theme_id, "channel": s.channel,
                           "contact_allowed": s.contact_allowed,
                           "created_at": s.created_at.isoformat()}
                          for s in session.scalars(select(Subscription).where(
                              Subscription.user_id == user.id))],
    }


def forget_user(session: Session, store: EncryptedStore, user_id: str, salt: str) -> list[str]:
    """Delete the hub's data of a user whose account is being deleted, and record a
    ``user.deleted`` event for every app that knew them (before their grants go).
    Returns the storage keys of their files, to delete once the transaction commits."""
    client_ids = set(session.scalars(select(Grant.client_id).where(Grant.user_id == user_id)))
    client_ids.update(session.scalars(select(HubRequest.client_id).where(
        HubRequest.user_id == user_id)))
    for client in session.scalars(select(Client).where(Client.client_id.in_(client_ids))):
        session.add(HubEvent(client_id=client.client_id, type="user.deleted",
                             subject=subject_of(client, user_id, salt)))
    keys = list(session.scalars(select(WalletDocument.storage_key).where(
        WalletDocument.user_id == user_id)))
    request_ids = select(HubRequest.id).where(HubRequest.user_id == user_id)
    for statement in (
            delete(HubMessage).where(HubMessage.request_id.in_(request_ids)),
            delete(HubRequestStatus).where(HubRequestStatus.request_id.in_(request_ids)),
            delete(HubRequest).where(HubRequest.user_id == user_id),
            delete(HubNotification).where(HubNotification.user_id == user_id),
            delete(NotificationPreference).where(NotificationPreference.user_id == user_id),
            delete(DocumentGrant).where(DocumentGrant.user_id == user_id),
            delete(WalletDocument).where(WalletDocument.user_id == user_id),
            delete(Subscription).where(Subscription.user_id == user_id),
            delete(HubSubject).where(HubSubject.user_id == user_id)):
        session.execute(statement.execution_options(synchronize_session=False))
    return keys


def delete_files(store: EncryptedStore, keys: list[str]) -> None:
    for key in keys:
        store.delete(key)


def events_for(session: Session, client: Client, after: int = 0, limit: int = 100
               ) -> list[HubEvent]:
    return list(session.scalars(select(HubEvent).where(
        HubEvent.client_id == client.client_id, HubEvent.id > after)
        .order_by(HubEvent.id).limit(limit)))


def purge_events(session: Session, retention_days: int) -> int:
    return session.execute(delete(HubEvent).where(
        HubEvent.created_at < utcnow() - dt.timedelta(days=retention_days))).rowcount

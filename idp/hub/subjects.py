"""The subjects apps know users by.

An app names a user by the ``sub`` of its ID tokens: the user id for a ``public``
client, a per-sector hash for a ``pairwise`` one (``idp.oidc.claims.subject_for``),
which cannot be reversed. ``remember`` records each subject issued (the token endpoint
calls it when a code is exchanged); ``resolve`` finds the user back. A subject not yet
recorded (issued before this table existed) is found among the users who authorised
the app, and recorded then.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..identity import subjects as identity_subjects
from ..oidc.claims import subject_for
from ..persistence.models import Client, Grant, HubSubject, User


def remember(session: Session, client: Client, user_id: str, sub: str) -> None:
    """Record that ``client`` knows ``user_id`` as ``sub`` (a public subject is the user
    id itself: nothing to record)."""
    if client.subject_type == "pairwise":
        identity_subjects.remember(session, client.sector, sub, user_id)


def subject_of(client: Client, user_id: str, salt: str) -> str:
    return subject_for(user_id, client, salt)


def _knows(session: Session, client: Client, user_id: str) -> bool:
    return session.scalar(select(Grant.id).where(
        Grant.client_id == client.client_id, Grant.user_id == user_id).limit(1)) is not None


def resolve(session: Session, client: Client, sub: str, salt: str) -> User | None:
    """The enabled user ``client`` knows as ``sub``; None for a subject it was never
    given, a deleted or a disabled account. An app only reaches users who signed in
    to it (or to an app of its sector, for pairwise subjects)."""
    if not isinstance(sub, str) or not 0 < len(sub) <= 255:
        return None
    if client.subject_type != "pairwise":
        user = session.get(User, sub)
        if user is None or not _knows(session, client, user.id):
            return None
        return None if user.disabled else user
    user_id = session.scalar(select(HubSubject.user_id).where(
        HubSubject.sector == client.sector, HubSubject.subject == sub))
    if user_id is None:
        for candidate in session.scalars(select(Grant.user_id).where(
                Grant.client_id == client.client_id).distinct()):
            if subject_for(candidate, client, salt) == sub:
                remember(session, client, candidate, sub)
                user_id = candidate
                break
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return None if user is None or user.disabled else user

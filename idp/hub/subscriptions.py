"""Subscriptions ("Abonnements"): themes configured by the administration, picked by
users, read by publishing apps; an unsubscribe link signed for one user and theme."""

from __future__ import annotations

import re
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..persistence.models import Client, Subscription, Theme, User
from . import HubError
from .subjects import remember, subject_of

CHANNELS = ("email", "sms")
DEFAULT_THEMES = (
    ("actualites", "Actualités", "Les dernières nouvelles de la collectivité."),
    ("evenements", "Événements", "Manifestations, salons, journées portes ouvertes."),
    ("offres-emploi", "Offres d'emploi", "Les postes ouverts au recrutement."),
    ("appels-offres", "Appels d'offres", "Les marchés publics ouverts aux entreprises."),
    ("enquetes-publiques", "Enquêtes publiques",
     "Les projets soumis à l'avis du public."),
)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def themes(session: Session, *, active_only: bool = True) -> list[Theme]:
    statement = select(Theme).order_by(Theme.position, Theme.name)
    if active_only:
        statement = statement.where(Theme.active.is_(True))
    return list(session.scalars(statement))


def save_theme(session: Session, theme_id: str, name: str, description: str = "",
               active: bool = True, position: int | None = None) -> Theme:
    if not _SLUG.match(theme_id or ""):
        raise ValueError("a theme id is lower-case letters, digits and dashes")
    if not name.strip():
        raise ValueError("a theme needs a name")
    theme = session.get(Theme, theme_id)
    if theme is None:
        theme = Theme(id=theme_id, position=position if position is not None else 100)
        session.add(theme)
    elif position is not None:
        theme.position = position
    theme.name, theme.description, theme.active = name.strip(), description.strip(), active
    return theme


def ensure_default_themes(session: Session) -> None:
    """The usual themes, when the administration has configured none."""
    if session.scalar(select(Theme.id).limit(1)) is None:
        for position, (theme_id, name, description) in enumerate(DEFAULT_THEMES):
            save_theme(session, theme_id, name, description, position=position)


def user_subscriptions(session: Session, user_id: str) -> dict[str, Subscription]:
    return {s.theme_id: s for s in session.scalars(select(Subscription).where(
        Subscription.user_id == user_id))}


def set_subscriptions(session: Session, user: User, choices: dict[str, str]) -> None:
    """``choices``: the channel wanted per active theme id ("email", "sms"); a theme
    left out is unsubscribed."""
    known = {t.id for t in themes(session)}
    current = user_subscriptions(session, user.id)
    for theme_id in known:
        channel = choices.get(theme_id)
        subscription = current.get(theme_id)
        if channel not in CHANNELS:
            if subscription is not None:
                session.delete(subscription)
            continue
        if subscription is None:
            session.add(Subscription(user_id=user.id, theme_id=theme_id, channel=channel,
                                     contact_allowed=True))
        else:
            subscription.channel = channel
            subscription.contact_allowed = True


def unsubscribe(session: Session, user_id: str, theme_id: str) -> bool:
    return session.execute(delete(Subscription).where(
        Subscription.user_id == user_id, Subscription.theme_id == theme_id)).rowcount > 0


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt="hub-unsubscribe")


def unsubscribe_token(secret_key: str, user_id: str, theme_id: str) -> str:
    return _serializer(secret_key).dumps([user_id, theme_id])


def read_unsubscribe_token(secret_key: str, token: str) -> tuple[str, str] | None:
    try:
        value = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, str) for v in value)):
        return None
    return value[0], value[1]


def subscribers(session: Session, client: Client, theme_id: str, *, salt: str,
                secret_key: str, unsubscribe_url, cursor: str = "", limit: int = 500
                ) -> tuple[list[dict[str, Any]], str | None]:
    """The subscribers of a theme who agreed to be contacted, each with the channel
    they chose and its address, and a signed unsubscribe link; by pages of ``limit``
    (``cursor``: the last user id of the previous page)."""
    theme = session.get(Theme, theme_id)
    if theme is None or not theme.active:
        raise HubError("not_found", "no such theme", 404)
    statement = select(Subscription, User).join(User, User.id == Subscription.user_id).where(
        Subscription.theme_id == theme_id, Subscription.contact_allowed.is_(True),
        User.disabled.is_(False))
    if cursor:
        statement = statement.where(User.id > cursor)
    rows = list(session.execute(statement.order_by(User.id).limit(limit + 1)).all())
    items = []
    for subscription, user in rows[:limit]:
        sub = subject_of(client, user.id, salt)
        remember(session, client, user.id, sub)
        item: dict[str, Any] = {"sub": sub, "channel": subscription.channel,
                                "locale": user.locale,
                                "unsubscribe_url": unsubscribe_url(
                                    unsubscribe_token(secret_key, user.id, theme_id))}
        if subscription.channel == "sms" and user.phone_number and user.phone_number_verified:
            item["phone_number"] = user.phone_number
        else:
            item["channel"] = "email"
            item["email"] = user.contact_email or user.email
        items.append(item)
    next_cursor = rows[limit - 1][1].id if len(rows) > limit else None
    return items, next_cursor

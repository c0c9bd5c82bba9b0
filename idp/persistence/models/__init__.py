"""All models; importing this package registers every table on ``Base.metadata``."""

from .audit import AuditEvent
from .base import Base, new_id, utcnow
from .clients import Client, hash_client_secret
from .consumables import Consumable
from .hub import (DocumentGrant, HubEvent, HubMessage, HubNotification, HubRequest,
                  HubRequestStatus, HubSubject, NotificationPreference, Subscription, Theme,
                  WalletDocument)
from .oauth import Consent, Grant, RevokedAccessToken
from .registration import InitialAccessToken
from .relations import Relation
from .sessions import LogoutDelivery, SsoSession
from .users import MfaCredential, User

__all__ = [
    "AuditEvent", "Base", "Client", "Consent", "Consumable", "Grant", "InitialAccessToken",
    "LogoutDelivery",
    "MfaCredential", "RevokedAccessToken", "SsoSession", "User", "hash_client_secret",
    "new_id", "utcnow",
    "DocumentGrant", "HubEvent", "HubMessage", "HubNotification", "HubRequest",
    "HubRequestStatus", "HubSubject", "NotificationPreference", "Subscription", "Theme",
    "WalletDocument",
]

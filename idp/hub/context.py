"""What the hub needs of the running application: its wallet store and pairwise salt."""

from __future__ import annotations

import threading

from ..services import Services
from .storage import EncryptedStore, make_store

_lock = threading.Lock()


def wallet_store(svc: Services) -> EncryptedStore:
    """The application's wallet store, built on first use."""
    store = svc.extras.get("wallet_store")
    if store is None:
        with _lock:
            store = svc.extras.get("wallet_store")
            if store is None:
                store = svc.extras["wallet_store"] = make_store(svc.settings, svc.secret_key)
    return store


def pairwise_salt(svc: Services) -> str:
    return svc.settings.pairwise_salt or svc.secret_key

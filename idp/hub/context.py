"""What the hub needs of the running application: its wallet store and pairwise salt."""

from __future__ import annotations

import threading

from flask import current_app

from ..services import Services
from .storage import EncryptedStore, make_store

_lock = threading.Lock()
_EXTENSION = "idp_wallet_store"


def wallet_store(svc: Services) -> EncryptedStore:
    """The application's wallet store, built on first use (in an application context)."""
    extensions = current_app.extensions
    store = extensions.get(_EXTENSION)
    if store is None:
        with _lock:
            store = extensions.get(_EXTENSION)
            if store is None:
                store = extensions[_EXTENSION] = make_store(svc.settings, svc.secret_key)
    return store


def pairwise_salt(svc: Services) -> str:
    return svc.pairwise_salt

"""An app's settings from environment variables with its prefix (``DEMARCHES_``...)."""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# Every app's: the organisation with its article, as it reads in a sentence.
COMMON_DEFAULTS = {"ORGANISATION": "la Région"}
ARTICLES = ("la ", "le ", "les ", "l'", "l’")


def load(prefix: str, defaults: dict[str, str], overrides: dict[str, Any] | None) -> dict:
    """``{NAME: value}`` for every name of ``defaults``, from ``<prefix>NAME`` variables
    or ``overrides``; ISSUER, CLIENT_ID, CLIENT_SECRET are required."""
    config: dict[str, Any] = {name: os.environ.get(prefix + name, default)
                              for name, default in {**COMMON_DEFAULTS, **defaults}.items()}
    config.update(overrides or {})
    config["ISSUER"] = config["ISSUER"].rstrip("/")
    config["BASE_URL"] = config["BASE_URL"].rstrip("/")
    if not config["CLIENT_ID"] or not config["CLIENT_SECRET"]:
        raise RuntimeError(f"{prefix}CLIENT_ID and {prefix}CLIENT_SECRET are required "
                           "(register the app with `idp clients create`)")
    if not config.get("SECRET_KEY"):
        log.warning("%sSECRET_KEY is not set: sessions end when the app restarts", prefix)
        config["SECRET_KEY"] = secrets.token_urlsafe(32)
    insecure = [u for u in (config["ISSUER"], config["BASE_URL"])
                if not u.startswith("https://")]
    for url in insecure:
        if urlsplit(url).hostname not in LOCAL_HOSTS:
            raise RuntimeError(f"{url}: https is required outside of localhost")
    if insecure:
        # Authlib refuses plain http unless told; only local demos and tests get here.
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    return config


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def without_article(name: str) -> str:
    """``"la Province Sud"`` → ``"Province Sud"``: the name as a title shows it."""
    for article in ARTICLES:
        if name.lower().startswith(article):
            rest = name[len(article):]
            return rest[:1].upper() + rest[1:]
    return name

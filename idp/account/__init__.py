"""The account space "Mon compte": profile and contacts, security, preferences,
relations, applications and privacy. One blueprint; one module per section."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("account", __name__, url_prefix="/compte", static_folder="static",
               static_url_path="/static")


@bp.after_request
def _no_store(response):
    # Every page shows personal data: never kept by a browser or a proxy.
    if not (response.headers.get("Cache-Control") and _is_static()):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def _is_static() -> bool:
    from flask import request

    return request.endpoint == "account.static"


# The sections register their routes on ``bp`` (imported last: they import ``bp``).
from . import (applications, contact, mfa, preferences, privacy,  # noqa: E402,F401
               profile, relations, security)
from . import (catalogue, hub_notifications, hub_requests,  # noqa: E402,F401
               subscriptions, wallet)

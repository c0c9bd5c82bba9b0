"""The routes of the hub's APIs; each checks its token's scope (Authlib's
``ResourceProtector``), counts the app's call, and hands the work to ``idp.hub``."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from flask import Response, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from ..hub import HubError, lifecycle, notifications, requests as hub_requests
from ..hub import subscriptions, wallet
from ..hub.context import pairwise_salt, wallet_store
from ..hub.subjects import resolve
from ..hub.validation import json_object
from ..oidc.resource import current_token, require_oauth
from ..persistence.models import Client, User, utcnow
from ..security.ratelimit import count, parse_limits
from ..services import audit, services
from . import bp
from .openapi import openapi_document

log = logging.getLogger(__name__)

_ERROR_CODES = {400: "invalid_request", 404: "not_found", 405: "invalid_request",
                413: "invalid_request", 429: "rate_limited"}


def error(code: str, description: str, status: int, headers: dict | None = None):
    response = jsonify(error=code, error_description=description)
    response.status_code = status
    response.headers.update(headers or {})
    return response


@bp.errorhandler(HubError)
def _hub_error(exc: HubError):
    if exc.status >= 500:
        services().db.session.rollback()
    return error(exc.error, exc.description, exc.status)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    response = exc.get_response()
    if response.mimetype == "application/json":  # Authlib's RFC 6750 answer
        code = (response.get_json(silent=True) or {}).get("error")
        if code in ("invalid_token", "insufficient_scope") \
                and "WWW-Authenticate" not in response.headers:
            response.headers["WWW-Authenticate"] = f'Bearer error="{code}"'  # RFC 6750 §3
        return response
    return error(_ERROR_CODES.get(exc.code or 400, "invalid_request"), exc.name, exc.code or 400)


def _count_call(client_id: str):
    """The app's call counted against ``hub.api_per_client``; a 429 answer when over."""
    svc = services()
    if not svc.settings.rate_limits.enabled:
        return None
    wait = 0
    for limit in parse_limits(svc.settings.hub.api_per_client):
        wait = max(wait, count(svc.kv, "hub-api", client_id, limit))
    if wait:
        log.warning("API rate limit reached by client %s", client_id)
        return error("rate_limited", f"too many calls, retry in {wait} s", 429,
                     {"Retry-After": str(wait)})
    return None


def protected(scope: str) -> Callable:
    """The token must hold ``scope``; the view gets the calling app (a ``Client``)."""
    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def counted(*args, **kwargs):
            limited = _count_call(current_token.client_id)
            if limited is not None:
                return limited
            client = services().db.session.get(Client, current_token.client_id)
            if client is None:
                return error("invalid_token", "the app is no longer registered", 401)
            return view(client, *args, **kwargs)
        return require_oauth(scope)(counted)
    return decorate


def _body() -> dict[str, Any]:
    return json_object(request.get_json(silent=True))


def _user(client: Client, sub: Any) -> User:
    user = resolve(services().db.session, client, sub, pairwise_salt(services()))
    if user is None:
        raise HubError("unknown_user", "no user known to this app by this sub (never signed "
                       "in to it, or the account was deleted)", 404)
    return user


def _created(payload: dict[str, Any], location: str) -> Response:
    response = jsonify(payload)
    response.status_code = 201
    response.headers["Location"] = location
    return response


# -- documents ---------------------------------------------------------------------------
@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document(services().settings.issuer))


# -- requests ----------------------------------------------------------------------------
@bp.post("/requests")
@protected("requests:write")
def create_request(client: Client):
    data = _body()
    user = _user(client, data.get("sub"))
    db = services().db.session
    item = hub_requests.create_request(db, client, user, data["sub"], data)
    audit("hub.request_created", user_id=user.id, client_id=client.client_id,
          number=item.number)
    db.commit()
    return _created(hub_requests.request_as_dict(item),
                    url_for("api.get_request", request_id=item.id))


@bp.get("/requests")
@protected("requests:write")
def list_requests(client: Client):
    sub = request.args.get("sub") or None
    items = hub_requests.app_requests(services().db.session, client, sub)
    return jsonify(requests=[hub_requests.request_as_dict(r, with_messages=False)
                             for r in items])


@bp.get("/requests/<request_id>")
@protected("requests:write")
def get_request(client: Client, request_id: str):
    item = hub_requests.owned_request(services().db.session, client, request_id)
    return jsonify(hub_requests.request_as_dict(item))


@bp.patch("/requests/<request_id>")
@protected("requests:write")
def update_request(client: Client, request_id: str):
    db = services().db.session
    item = hub_requests.owned_request(db, client, request_id)
    data = _body()
    changed = hub_requests.update_request(db, client, item, data)
    if changed:
        audit("hub.request_status", user_id=item.user_id, client_id=client.client_id,
              number=item.number, status=item.status)
    db.commit()
    return jsonify(hub_requests.request_as_dict(item))


@bp.post("/requests/<request_id>/messages")
@protected("requests:write")
def post_message(client: Client, request_id: str):
    db = services().db.session
    item = hub_requests.owned_request(db, client, request_id)
    message = hub_requests.add_message(db, item, "service", _body().get("body"))
    db.commit()
    return _created(hub_requests.message_as_dict(message),
                    url_for("api.get_messages", request_id=item.id))


@bp.get("/requests/<request_id>/messages")
@protected("requests:write")
def get_messages(client: Client, request_id: str):
    """The messages of a request; the citizen's are marked read by the app."""
    db = services().db.session
    item = hub_requests.owned_request(db, client, request_id)
    payload = [hub_requests.message_as_dict(m) for m in item.messages]
    if hub_requests.mark_read(item, "citizen"):
        db.commit()
    return jsonify(messages=payload)


# -- notifications -----------------------------------------------------------------------
@bp.post("/notifications")
@protected("notifications:write")
def push_notification(client: Client):
    svc = services()
    db = svc.db.session
    data = _body()
    user = _user(client, data.get("sub"))
    values = notifications.parse_notification(data, client)
    item = notifications.create_notification(db, svc.kv, svc.settings, client, user, values)
    db.commit()
    # Sent once stored: a failed delivery never loses the notification in "Mon compte".
    notifications.deliver(db, svc.messenger, svc.settings, user, item, client.name,
                          url_for("account.notifications", _external=True))
    db.commit()
    return _created(notifications.notification_as_dict(item), url_for("api.push_notification"))


# -- documents ---------------------------------------------------------------------------
def _granted(client: Client):
    data = _body()
    return wallet.granted_document(services().db.session, client, data.get("grant"))


@bp.post("/documents/describe")
@protected("documents:read")
def describe_document(client: Client):
    _grant, document = _granted(client)
    return jsonify(wallet.document_as_dict(document))


@bp.post("/documents/download")
@protected("documents:read")
def download_document(client: Client):
    svc = services()
    grant, document = _granted(client)
    data = wallet.read_document(wallet_store(svc), document)
    if grant.read_at is None:
        grant.read_at = utcnow()
        audit("hub.document_read", user_id=grant.user_id, client_id=client.client_id,
              document=document.id)
        svc.db.session.commit()
    response = Response(data, mimetype=wallet.KINDS[document.kind])
    response.headers["Content-Disposition"] = \
        f'attachment; filename="document.{document.kind}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# -- subscriptions -----------------------------------------------------------------------
@bp.get("/themes")
@protected("subscriptions:read")
def list_themes(client: Client):
    return jsonify(themes=[{"id": t.id, "name": t.name, "description": t.description}
                           for t in subscriptions.themes(services().db.session)])


@bp.get("/themes/<theme_id>/subscribers")
@protected("subscriptions:read")
def theme_subscribers(client: Client, theme_id: str):
    svc = services()
    db = svc.db.session
    items, cursor = subscriptions.subscribers(
        db, client, theme_id, salt=pairwise_salt(svc), secret_key=svc.secret_key,
        unsubscribe_url=lambda token: url_for("account.unsubscribe", token=token,
                                              _external=True),
        cursor=request.args.get("cursor", "")[:64])
    db.commit()  # the subjects remembered
    return jsonify(subscribers=items, next_cursor=cursor)


# -- events ------------------------------------------------------------------------------
@bp.get("/events")
@protected("events:read")
def list_events(client: Client):
    try:
        after = int(request.args.get("after", "0"))
        if not 0 <= after < 2**62:
            raise ValueError
    except ValueError:
        return error("invalid_request", "after: must be an integer", 400)
    events = lifecycle.events_for(services().db.session, client, after)
    return jsonify(events=[{"id": e.id, "type": e.type, "sub": e.subject,
                            "created_at": e.created_at.isoformat()} for e in events],
                   last_id=events[-1].id if events else after)

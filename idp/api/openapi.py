"""The OpenAPI 3.1 description of the hub's APIs, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from ..hub.notifications import CATEGORIES
from ..hub.requests import STATUSES


def _error_responses(*codes: int) -> dict[str, Any]:
    names = {400: "Invalid input (`invalid_request`)",
             401: "Missing, expired or revoked token (`invalid_token`)",
             403: "Wrong scope (`insufficient_scope`) or another app's request (`forbidden`)",
             404: "Unknown user, request, theme or grant",
             409: "Conflict (the number is taken; too many messages)",
             410: "The document grant has expired (`expired_grant`)",
             429: "Rate limit reached (`rate_limited`, `Retry-After`)"}
    return {str(code): {"description": names[code],
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Error"}}}}
            for code in codes}


def _op(summary: str, scope: str, responses: dict[str, Any], *, body: str | None = None,
        parameters: list | None = None, errors=(400, 401, 403, 429)) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary, "security": [{"bearer": [scope]}],
        "responses": {**responses, **_error_responses(*errors)}}
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
    if parameters:
        operation["parameters"] = parameters
    return operation


def _json(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}}


_REQUEST_ID = {"name": "request_id", "in": "path", "required": True,
               "schema": {"type": "string"}}
_STR = {"type": "string"}
_DATE = {"type": "string", "format": "date-time"}


def openapi_document(issuer: str) -> dict[str, Any]:
    grant_body = "DocumentGrantRef"
    return {
        "openapi": "3.1.0",
        "info": {"title": "Compte usager: hub APIs", "version": "1",
                 "description": "Requests, notifications, wallet documents and subscriptions "
                                "for démarche apps. See docs/api.md."},
        "servers": [{"url": issuer + "/api"}],
        "components": {
            "securitySchemes": {"bearer": {
                "type": "oauth2", "description": "Access tokens of this provider "
                "(client_credentials grant, client authentication as registered).",
                "flows": {"clientCredentials": {"tokenUrl": issuer + "/token", "scopes": {
                    "requests:write": "File and update requests",
                    "notifications:write": "Send notifications",
                    "documents:read": "Read a document the user picked",
                    "subscriptions:read": "Read the subscribers of a theme",
                    "events:read": "Read account deletion events"}}}}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": _STR, "error_description": _STR}},
                "NewRequest": {"type": "object",
                               "required": ["sub", "number", "title", "service"],
                               "properties": {
                                   "sub": {**_STR, "description": "The user's sub for this app"},
                                   "number": {**_STR, "maxLength": 64},
                                   "title": {**_STR, "maxLength": 300},
                                   "service": {**_STR, "maxLength": 300},
                                   "submitted_at": _DATE,
                                   "status": {"enum": list(STATUSES)},
                                   "expected_days": {"type": ["integer", "null"],
                                                     "minimum": 0, "maximum": 3650},
                                   "link": {**_STR, "format": "uri"},
                                   "comment": {**_STR, "maxLength": 2000}}},
                "RequestChange": {"type": "object", "properties": {
                    "status": {"enum": list(STATUSES)}, "comment": _STR, "title": _STR,
                    "service": _STR, "expected_days": {"type": ["integer", "null"]},
                    "link": _STR}},
                "Request": {"type": "object", "properties": {
                    "id": _STR, "sub": _STR, "number": _STR, "title": _STR, "service": _STR,
                    "submitted_at": _DATE, "status": {"enum": list(STATUSES)},
                    "expected_days": {"type": ["integer", "null"]},
                    "link": {"type": ["string", "null"]},
                    "history": {"type": "array", "items": {"type": "object", "properties": {
                        "status": _STR, "comment": {"type": ["string", "null"]},
                        "at": _DATE}}},
                    "messages": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Message"}},
                    "created_at": _DATE, "updated_at": _DATE}},
                "RequestList": {"type": "object", "properties": {"requests": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Request"}}}},
                "NewMessage": {"type": "object", "required": ["body"],
                               "properties": {"body": {**_STR, "maxLength": 5000}}},
                "Message": {"type": "object", "properties": {
                    "id": _STR, "author": {"enum": ["service", "citizen"]}, "body": _STR,
                    "created_at": _DATE, "read_at": {"type": ["string", "null"]}}},
                "MessageList": {"type": "object", "properties": {"messages": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Message"}}}},
                "NewNotification": {"type": "object", "required": ["sub", "title"],
                                    "properties": {
                                        "sub": _STR, "title": {**_STR, "maxLength": 200},
                                        "body": {**_STR, "maxLength": 2000},
                                        "link": {**_STR, "format": "uri"},
                                        "category": {"enum": list(CATEGORIES)}}},
                "Notification": {"type": "object", "properties": {
                    "id": _STR, "category": _STR, "title": _STR,
                    "body": {"type": ["string", "null"]}, "link": {"type": ["string", "null"]},
                    "created_at": _DATE, "read": {"type": "boolean"},
                    "sent_by": {"type": "array", "items": {"enum": ["email", "sms"]}}}},
                grant_body: {"type": "object", "required": ["grant"],
                             "properties": {"grant": _STR}},
                "Document": {"type": "object", "properties": {
                    "name": _STR, "type": {"enum": ["png", "pdf", "jpg", "dwg"]},
                    "content_type": _STR, "size": {"type": "integer"},
                    "date": {"type": ["string", "null"], "format": "date"}, "sha256": _STR}},
                "ThemeList": {"type": "object", "properties": {"themes": {
                    "type": "array", "items": {"type": "object", "properties": {
                        "id": _STR, "name": _STR, "description": _STR}}}}},
                "SubscriberList": {"type": "object", "properties": {
                    "subscribers": {"type": "array", "items": {"type": "object", "properties": {
                        "sub": _STR, "channel": {"enum": ["email", "sms"]}, "email": _STR,
                        "phone_number": _STR, "locale": _STR,
                        "unsubscribe_url": {**_STR, "format": "uri"}}}},
                    "next_cursor": {"type": ["string", "null"]}}},
                "EventList": {"type": "object", "properties": {
                    "events": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "integer"}, "type": {"enum": ["user.deleted"]},
                        "sub": _STR, "created_at": _DATE}}},
                    "last_id": {"type": "integer"}}},
            }},
        "paths": {
            "/requests": {
                "post": _op("File a request for a user", "requests:write",
                            {"201": _json("Request", "Created")}, body="NewRequest",
                            errors=(400, 401, 403, 404, 409, 429)),
                "get": _op("The app's requests (newest first, 100 at most)", "requests:write",
                           {"200": _json("RequestList")},
                           parameters=[{"name": "sub", "in": "query", "schema": _STR}])},
            "/requests/{request_id}": {
                "parameters": [_REQUEST_ID],
                "get": _op("One of the app's requests", "requests:write",
                           {"200": _json("Request")}, errors=(401, 403, 404, 429)),
                "patch": _op("Change a request (a new status goes to its history)",
                             "requests:write", {"200": _json("Request")}, body="RequestChange",
                             errors=(400, 401, 403, 404, 429))},
            "/requests/{request_id}/messages": {
                "parameters": [_REQUEST_ID],
                "post": _op("Write to the citizen about a request", "requests:write",
                            {"201": _json("Message", "Created")}, body="NewMessage",
                            errors=(400, 401, 403, 404, 409, 429)),
                "get": _op("The messages of a request (the citizen's are marked read)",
                           "requests:write", {"200": _json("MessageList")},
                           errors=(401, 403, 404, 429))},
            "/notifications": {
                "post": _op("Notify a user (shown in Mon compte; e-mail or SMS as they chose)",
                            "notifications:write", {"201": _json("Notification", "Created")},
                            body="NewNotification", errors=(400, 401, 403, 404, 429))},
            "/documents/describe": {
                "post": _op("Describe the document a grant gives access to", "documents:read",
                            {"200": _json("Document")}, body=grant_body,
                            errors=(400, 401, 403, 404, 410, 429))},
            "/documents/download": {
                "post": _op("Download the document a grant gives access to", "documents:read",
                            {"200": {"description": "The document's bytes", "content": {
                                "application/octet-stream": {}}}},
                            body=grant_body, errors=(400, 401, 403, 404, 410, 429))},
            "/themes": {
                "get": _op("The active themes", "subscriptions:read",
                           {"200": _json("ThemeList")}, errors=(401, 403, 429))},
            "/themes/{theme_id}/subscribers": {
                "get": _op("Subscribers of a theme who agreed to be contacted",
                           "subscriptions:read", {"200": _json("SubscriberList")},
                           parameters=[{"name": "theme_id", "in": "path", "required": True,
                                        "schema": _STR},
                                       {"name": "cursor", "in": "query", "schema": _STR}],
                           errors=(401, 403, 404, 429))},
            "/events": {
                "get": _op("Events of the app's users (deleted accounts), oldest first",
                           "events:read", {"200": _json("EventList")},
                           parameters=[{"name": "after", "in": "query",
                                        "schema": {"type": "integer"}}])},
        },
    }

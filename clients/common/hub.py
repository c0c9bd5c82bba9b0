"""Calls to the provider's hub APIs (docs/api.md) with the app's own token
(client_credentials, fetched again by Authlib when it expires)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session

log = logging.getLogger(__name__)
TIMEOUT = 10


class HubError(Exception):
    def __init__(self, status: int, error: str, description: str = "") -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status, self.error, self.description = status, error, description


class HubClient:
    def __init__(self, issuer: str, client_id: str, client_secret: str, scope: str) -> None:
        self.base = issuer + "/api"
        self._lock = threading.Lock()
        self._session = OAuth2Session(client_id, client_secret, scope=scope,
                                      token_endpoint=issuer + "/token",
                                      grant_type="client_credentials")

    def _call(self, method: str, path: str, **kw) -> requests.Response:
        with self._lock:  # one token for every thread, fetched once
            if not self._session.token:
                self._session.fetch_token()
            response = self._session.request(method, self.base + path, timeout=TIMEOUT,
                                             withhold_token=False, **kw)
            if response.status_code == 401:  # revoked, or the provider's keys rotated
                self._session.fetch_token()
                response = self._session.request(method, self.base + path, timeout=TIMEOUT,
                                                 **kw)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise HubError(response.status_code, body.get("error", "error"),
                           body.get("error_description", ""))
        return response

    def json(self, method: str, path: str, **kw) -> Any:
        return self._call(method, path, **kw).json()

    # -- requests --------------------------------------------------------------------
    def create_request(self, **fields) -> dict:
        return self.json("POST", "/requests", json=fields)

    def update_request(self, request_id: str, **fields) -> dict:
        return self.json("PATCH", f"/requests/{request_id}", json=fields)

    def post_message(self, request_id: str, body: str) -> dict:
        return self.json("POST", f"/requests/{request_id}/messages", json={"body": body})

    def messages(self, request_id: str) -> list[dict]:
        return self.json("GET", f"/requests/{request_id}/messages")["messages"]

    def notify(self, **fields) -> dict:
        return self.json("POST", "/notifications", json=fields)

    # -- documents, themes, events ----------------------------------------------------
    def describe_document(self, grant: str) -> dict:
        return self.json("POST", "/documents/describe", json={"grant": grant})

    def download_document(self, grant: str) -> bytes:
        return self._call("POST", "/documents/download", json={"grant": grant}).content

    def themes(self) -> list[dict]:
        return self.json("GET", "/themes")["themes"]

    def subscribers(self, theme_id: str) -> list[dict]:
        items, cursor = [], ""
        while True:
            page = self.json("GET", f"/themes/{theme_id}/subscribers",
                             params={"cursor": cursor} if cursor else None)
            items.extend(page["subscribers"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def events(self, after: int) -> dict:
        return self.json("GET", "/events", params={"after": after})

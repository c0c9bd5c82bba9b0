"""Signing in to a relying party from a test browser, and calling its endpoints."""

from __future__ import annotations

from tests.conftest import basic_auth
from tests.support import query_of


def sign_in_to(browser, client, user, scope: str, consent: bool = True) -> dict:
    """The token response (or the error query) after an authorization with ``scope``."""
    response, verifier, _query = browser.authorize(client, scope=scope)
    location = browser.follow_to_client(response, email=user.email, consent=consent)
    result = query_of(location)
    if "code" not in result:
        return result
    token = browser.post("/token", headers=basic_auth(client), data={
        "grant_type": "authorization_code", "code": result["code"],
        "redirect_uri": client.redirect_uri, "code_verifier": verifier})
    assert token.status_code == 200, token.json
    return token.json


def userinfo(browser, access_token: str):
    return browser.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def refresh(browser, client, refresh_token: str, **extra):
    return browser.post("/token", headers=basic_auth(client), data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, **extra})

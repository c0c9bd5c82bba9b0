"""Fixtures of the hub's tests: démarche apps registered with the API scopes, their
client_credentials tokens, users signed in to them (a real code flow, so the app knows
the user by the sub of its ID token), and JSON calls to ``/api/``."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest

from idp.hub.subscriptions import ensure_default_themes
from idp.messaging.outbox import read_outbox
from tests.conftest import basic_auth, fresh, marked_settings
from tests.support import Browser, PASSWORD, RegisteredClient, query_of

API_SCOPES = ["requests:write", "notifications:write", "documents:read",
              "subscriptions:read", "events:read"]


@pytest.fixture
def app(make_app, request, tmp_path):
    """The application, its wallet in this test's folder; ``@pytest.mark.settings(...)``
    adds overrides."""
    wallet_here = {"hub": {"wallet_dir": str(tmp_path / "wallet")}}
    yield from fresh(make_app(**marked_settings(request, wallet_here)))


@dataclass
class App:
    """A registered démarche app as the tests drive it."""

    registered: RegisteredClient
    token: str

    @property
    def client_id(self) -> str:
        return self.registered.client_id


@pytest.fixture
def api(app):
    """``api(method, path, token, json=..., data=...)``: a call to the hub's APIs."""
    client = app.test_client()

    def call(method: str, path: str, token: str | None = None, **kw):
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return client.open(path, method=method, headers=headers, **kw)

    return call


@pytest.fixture
def app_token(app):
    def token(registered: RegisteredClient, scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        response = app.test_client().post("/token", data=data, headers=basic_auth(registered))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]
    return token


@pytest.fixture
def make_demarche(client_factory, app_token):
    def factory(name="Aide au logement", scopes=API_SCOPES, subject_type="pairwise",
                host="demarche.example.org") -> App:
        registered = client_factory(
            redirect_uri=f"https://{host}/callback", name=name, require_consent=False,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            scopes=["openid", "profile", "email", *scopes], subject_type=subject_type,
            home_url=f"https://{host}/")
        return App(registered, app_token(registered))
    return factory


@pytest.fixture
def demarche(make_demarche) -> App:
    return make_demarche()


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def sign_in(app):
    """``sign_in(browser, user, app)``: the user signs in to the app (code flow, code
    exchanged); returns the ``sub`` of the ID token the app received."""
    def run(browser: Browser, email: str, demarche_app: App) -> str:
        registered = demarche_app.registered
        response, verifier, query = browser.authorize(registered, scope="openid profile email")
        location = browser.follow_to_client(response, email=email, password=PASSWORD)
        code = query_of(location)["code"]
        token = app.test_client().post("/token", headers=basic_auth(registered), data={
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": registered.redirect_uri, "code_verifier": verifier})
        assert token.status_code == 200, token.get_json()
        return _claims(token.get_json()["id_token"])["sub"]
    return run


@pytest.fixture
def citizen(user, browser, demarche, sign_in):
    """The user, signed in to the provider and to the démarche app: (user, sub)."""
    return user, sign_in(browser, user.email, demarche)


@pytest.fixture
def themes(app, svc):
    with app.app_context():
        ensure_default_themes(svc.db.session)
        svc.db.session.commit()


@pytest.fixture
def outbox(svc):
    return lambda: read_outbox(svc.settings.resolve_path(svc.settings.messaging.outbox_dir))

"""Two provider instances sharing PostgreSQL (or the SQLite file), Redis and the keys
folder, behind a round-robin proxy: a whole journey with consecutive requests going to
different instances, and a key rotation seen by both."""

from __future__ import annotations

import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from tests.conftest import TEST_REDIS
from tests.e2e.conftest import IDP_COMMAND, LiveProcess, WebBrowser, free_port
from tests.operations.proxy import CuttableProxy

pytestmark = [pytest.mark.live_server, pytest.mark.slow,
              pytest.mark.skipif(not TEST_REDIS, reason="instances share Redis")]


class RoundRobinProxy(CuttableProxy):
    """Each new connection goes to the next instance."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.served = {port: 0 for port in ports}
        self.turn = 0
        super().__init__()

    def next_upstream(self) -> tuple[str, int]:
        port = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        self.served[port] += 1
        return ("127.0.0.1", port)


class OneConnectionPerRequest(WebBrowser):
    """A browser that opens a new connection for every request: round robin applies."""

    def __init__(self) -> None:
        super().__init__()
        self.http.headers["Connection"] = "close"


@pytest.fixture
def instances(live, tmp_path):
    ports = [free_port(), free_port()]
    proxy = RoundRobinProxy(ports)
    issuer = f"http://127.0.0.1:{proxy.port}"
    env = {**live.env, "IDP_ISSUER": issuer}
    started = [LiveProcess(f"instance {n}", [*IDP_COMMAND, "serve", "--port", str(port),
                                             "--workers", "1"], env,
                           tmp_path / f"instance{n}.log", f"http://127.0.0.1:{port}",
                           "/readyz")
               for n, port in enumerate(ports)]
    yield issuer, proxy, env
    for process in started:
        process.stop()
    proxy.listener.close()


def test_a_whole_journey_across_two_instances(instances, client_factory, user_factory):
    issuer, proxy, _ = instances
    user = user_factory()
    redirect_uri = "http://127.0.0.1:9/callback"
    rp = client_factory(redirect_uri=redirect_uri, name="Démarche partagée")  # consent on
    browser = OneConnectionPerRequest()
    client = OAuth2Session(rp.client_id, rp.client_secret, scope="openid email offline_access",
                           redirect_uri=redirect_uri, code_challenge_method="S256")
    client.headers["Connection"] = "close"
    verifier = generate_token(48)
    url, state = client.create_authorization_url(issuer + "/authorize",
                                                 code_verifier=verifier, nonce="n-1")
    # Login, consent and code, one request per instance in turn.
    location = browser.drive(browser.get(url), email=user.email, stop_at=redirect_uri)
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert params["state"] == state
    token = client.fetch_token(issuer + "/token", code=params["code"], code_verifier=verifier)
    refreshed = client.refresh_token(issuer + "/token", refresh_token=token["refresh_token"])
    for _ in range(2):  # userinfo on each instance
        info = requests.get(issuer + "/userinfo", timeout=10, headers={
            "Authorization": f"Bearer {refreshed['access_token']}", "Connection": "close"})
        assert info.status_code == 200 and info.json()["email"] == user.email
    logout = browser.get(issuer + "/logout", params={"id_token_hint": token["id_token"]})
    assert logout.status_code in (200, 302)
    # Signed out on both instances: the next authorization asks for the password again.
    for _ in range(2):
        again, _ = client.create_authorization_url(issuer + "/authorize",
                                                   code_verifier=verifier, nonce="n-2")
        answer = browser.get(again)
        assert answer.status_code == 302 and "/login?" in answer.headers["Location"]
    assert all(count >= 5 for count in proxy.served.values()), proxy.served


def test_a_rotated_key_is_published_by_both_before_either_signs_with_it(
        instances, client_factory):
    issuer, _, env = instances
    service = client_factory(grant_types=["client_credentials"], scopes=["profile"])

    def kids() -> list[set[str]]:
        return [{k["kid"] for k in requests.get(issuer + "/jwks.json", timeout=10, headers={
            "Connection": "close"}).json()["keys"]} for _ in range(2)]
    before = kids()
    subprocess.run([*IDP_COMMAND, "keys", "rotate"], env=env, check=True, timeout=60,
                   capture_output=True)
    # For the reload interval and well beyond, every token still verifies everywhere.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        minted = requests.post(issuer + "/token", auth=(service.client_id,
                                                        service.client_secret),
                               data={"grant_type": "client_credentials"},
                               headers={"Connection": "close"}, timeout=10).json()
        for _ in range(2):
            answer = requests.post(issuer + "/introspect", auth=(service.client_id,
                                                                 service.client_secret),
                                   data={"token": minted["access_token"]},
                                   headers={"Connection": "close"}, timeout=10).json()
            assert answer["active"] is True
        time.sleep(0.5)
    after = kids()
    assert after[0] == after[1] and before[0] < after[0]  # both publish the new keys

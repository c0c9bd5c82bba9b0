"""Live-server fixtures: real provider (and sample app) processes on free ports.

The provider process shares the test database (``database_url``, already migrated) and
key-value store (``TEST_REDIS``) with the ``app`` fixture, which wipes them first; tests
register clients and users before or while the process runs. Every wait is bounded so
that a hang fails the test instead of blocking CI, and processes are killed on teardown.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from idp.config import PROJECT_ROOT
from tests.conftest import TEST_REDIS
from tests.support import PASSWORD, form_with, provider_environment

START_TIMEOUT = 30.0  # seconds for a process to answer
IDP_COMMAND = [sys.executable, "-c", "from idp.cli import main; main()"]
HTTP_TIMEOUT = 10.0  # seconds for any one request
STOP_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveProcess:
    """A server subprocess whose output goes to a log file shown when it fails."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path,
                 url: str, ready_path: str) -> None:
        self.name, self.url, self.log_path = name, url, log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(args, env=env, cwd=str(PROJECT_ROOT),
                                        stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready(ready_path)

    def log_tail(self, size: int = 4000) -> str:
        return self.log_path.read_bytes()[-size:].decode(errors="replace")

    def _wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n"
                            f"{self.log_tail()}")
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"{self.name} not ready after {START_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        self._log.close()


@dataclass
class LiveConfig:
    port: int
    issuer: str
    env: dict[str, str]


@pytest.fixture
def live(app, database_url, tmp_path) -> LiveConfig:
    """Port, issuer and environment of a provider process (and of the ``idp`` CLI)."""
    port = free_port()
    env = provider_environment(f"http://127.0.0.1:{port}", database_url, tmp_path,
                               "live-server-secret-" + "y" * 32, IDP_REDIS_URL=TEST_REDIS,
                               IDP_AUTO_MIGRATE="false")
    return LiveConfig(port, env["IDP_ISSUER"], env)


@pytest.fixture
def start_provider(live, tmp_path):
    """The provider as production runs it: ``idp serve`` (granian). Several workers
    need a shared store: one worker without Redis."""
    started: list[LiveProcess] = []

    def start(workers: int | None = None) -> LiveProcess:
        workers = workers or (2 if TEST_REDIS else 1)
        server = LiveProcess("provider", [*IDP_COMMAND, "serve", "--port", str(live.port),
                                          "--workers", str(workers)], live.env,
                             tmp_path / "provider.log", live.issuer,
                             "/.well-known/openid-configuration")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_client_app(tmp_path):
    """``start(module, prefix, issuer, client_id, client_secret, port, **env)``: an app
    of ``clients/`` as a process, its database and outbox in the test's folder."""
    started: list[LiveProcess] = []

    def start(module: str, prefix: str, issuer: str, client_id: str, client_secret: str,
              port: int, **extra: str) -> LiveProcess:
        base = f"http://127.0.0.1:{port}"
        name = module.rsplit(".", 1)[-1]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("IDP_", "DEMARCHES_", "ACTUALITES_"))}
        env.update({prefix + "ISSUER": issuer, prefix + "CLIENT_ID": client_id,
                    prefix + "CLIENT_SECRET": client_secret, prefix + "BASE_URL": base,
                    prefix + "SECRET_KEY": "sample-app-secret-" + "z" * 32,
                    prefix + "DATABASE_URL": f"sqlite:///{tmp_path / (name + '.sqlite3')}",
                    prefix + "OUTBOX_DIR": str(tmp_path / f"{name}-outbox"),
                    "PYTHONUNBUFFERED": "1"})
        env.update({prefix + k: v for k, v in extra.items()})
        server = LiveProcess(name, [sys.executable, "-m", module], env,
                             tmp_path / f"{name}.log", base, "/")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_sample_app(start_client_app):
    def start(issuer: str, client_id: str, client_secret: str, port: int,
              **extra: str) -> LiveProcess:
        return start_client_app("clients.demarches", "DEMARCHES_", issuer, client_id,
                                client_secret, port, **extra)
    return start


def idp_cli(env: dict[str, str], *args: str) -> str:
    """Run the ``idp`` command with the live environment; its standard output."""
    result = subprocess.run([*IDP_COMMAND, *args],
                            env=env, cwd=str(PROJECT_ROOT), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"idp {' '.join(args)}: {result.stderr}"
    return result.stdout


def idp_cli_json(env: dict[str, str], *args: str) -> dict:
    return json.loads(idp_cli(env, *args).strip().splitlines()[-1])


class WebBrowser:
    """A ``requests`` session used like a browser: one cookie jar for every port of
    127.0.0.1 (as real browsers do), redirects followed by hand so each hop is seen."""

    def __init__(self) -> None:
        self.http = requests.Session()
        self.visited: list[str] = []

    def get(self, url: str, **kw) -> requests.Response:
        self.visited.append(url)
        return self.http.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT, **kw)

    def post(self, url: str, **kw) -> requests.Response:
        self.visited.append(url)
        return self.http.post(url, allow_redirects=False, timeout=HTTP_TIMEOUT, **kw)

    def submit(self, response: requests.Response, field: str, values: dict | None = None,
               button: tuple[str, str] | None = None) -> requests.Response:
        """Post the page's form holding ``field`` (its hidden csrf_token included)."""
        form = form_with(response.text, field)
        assert form["method"].lower() == "post", form
        data = dict(form["fields"])
        data.update(values or {})
        if button:
            data[button[0]] = button[1]
        return self.post(urljoin(response.url, form["action"]), data=data)

    def drive(self, response: requests.Response, email: str, password: str = PASSWORD,
              consent: bool = True, stop_at: str | None = None, max_steps: int = 15):
        """Follow redirects, fill the login form and answer the consent screen.

        Returns the first redirect target starting with ``stop_at`` (a string), or the
        first page that is neither a redirect, nor the login form, nor the consent screen.
        """
        for _ in range(max_steps):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if stop_at and location.startswith(stop_at):
                    return location
                response = self.get(location)
                continue
            html = response.text
            if 'name="email"' in html and 'name="password"' in html:
                response = self.submit(response, "email", {"email": email,
                                                           "password": password})
                continue
            if 'name="decision"' in html and 'value="allow"' in html:
                response = self.submit(response, "decision",
                                       button=("decision", "allow" if consent else "deny"))
                continue
            return response
        raise AssertionError(f"too many steps: {self.visited[-max_steps:]}")

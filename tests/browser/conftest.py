"""Real-browser journeys: Playwright driving Debian's Chromium against live processes.

One stack per test session (``stack``): the provider (``idp serve``, its own SQLite
file, in-process store, a cheap proof-of-work captcha) and the sample démarche app started
twice, as two relying parties (SSO). Every page a journey lands on goes through
``Visit.check``: axe-core (WCAG 2.1 A and AA rules, no violation allowed) and a full-page
screenshot in ``tests/browser/artifacts/`` (git-ignored, kept by CI).

Run by ``scripts/test-browser`` (which installs Chromium, Playwright and axe-core when
missing), a step of ``.ci/run``. Elsewhere these tests are skipped unless
``IDP_BROWSER_TESTS=1``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# The variants every journey runs in: (name, viewport width, JavaScript on).
VARIANTS = {"desktop": (1280, True), "nojs": (1280, False), "mobile": (360, True)}
TIMEOUT_MS = 15_000

ENABLED = os.environ.get("IDP_BROWSER_TESTS") == "1"


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="browser journeys: run scripts/test-browser "
                                   "(or set IDP_BROWSER_TESTS=1)")
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


# -- the stack ----------------------------------------------------------------------------
@dataclass
class Stack:
    issuer: str
    apps: list[str]  # base URLs of the two démarche apps
    outbox_dir: Path
    database_url: str
    env: dict[str, str]

    def messages(self, to: str | None = None, kind: str | None = None) -> list[dict]:
        from idp.messaging.outbox import read_outbox
        return [m for m in read_outbox(self.outbox_dir)
                if (to is None or m["to"] == to) and (kind is None or m["kind"] == kind)]

    def last_message(self, to: str, kind: str = "email") -> dict:
        found = self.messages(to=to, kind=kind)
        assert found, f"no {kind} to {to}"
        return found[-1]


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if not ENABLED:
        pytest.skip("browser journeys disabled")
    from tests.e2e.conftest import IDP_COMMAND, LiveProcess, free_port
    from tests.support import provider_environment

    workdir = tmp_path_factory.mktemp("browser-stack")
    database_url = f"sqlite:///{workdir / 'idp.sqlite3'}"
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = provider_environment(
        issuer, database_url, workdir, "browser-tests-secret-" + "b" * 32,
        IDP_REGISTRATION__CAPTCHA_DIFFICULTY="2000",
        IDP_SUPPORT__EMAIL="assistance@example.org", IDP_SUPPORT__PHONE="01 23 45 67 89",
        # Many journeys from one address: the per-IP limits of a demo, not production's.
        IDP_RATE_LIMITS__LOGIN_PER_IP="1000/minute", IDP_RATE_LIMITS__REGISTER_PER_IP="1000/hour",
        IDP_RATE_LIMITS__RECOVERY_PER_IP="1000/hour",
        IDP_RATE_LIMITS__CODE_VERIFY_PER_IP="1000/minute",
        IDP_RATE_LIMITS__CODE_SEND_PER_IP="1000/hour",
        IDP_MESSAGING__SMS_PER_DESTINATION="100/hour", IDP_MESSAGING__SMS_PER_ACCOUNT="100/hour")
    app_ports = [free_port(), free_port()]
    secrets_ = _prepare(env, app_ports)
    # As production runs it (idp serve: granian), one worker: the store is in-process.
    processes = [LiveProcess("provider", [*IDP_COMMAND, "serve", "--port", str(port),
                                          "--workers", "1"],
                             env, workdir / "provider.log", issuer,
                             "/.well-known/openid-configuration")]
    try:
        for index, (app_port, (client_id, secret)) in enumerate(zip(app_ports, secrets_)):
            base = f"http://127.0.0.1:{app_port}"
            app_env = {k: v for k, v in os.environ.items()
                       if not k.startswith(("IDP_", "DEMARCHES_"))}
            app_env.update({"DEMARCHES_ISSUER": issuer, "DEMARCHES_CLIENT_ID": client_id,
                            "DEMARCHES_CLIENT_SECRET": secret, "DEMARCHES_BASE_URL": base,
                            "DEMARCHES_SECRET_KEY": f"browser-app-{index}-" + "c" * 32,
                            # Each app its own dossiers and mail, in the stack's folder.
                            "DEMARCHES_DATABASE_URL":
                                f"sqlite:///{workdir / f'demarches-{index + 1}.sqlite3'}",
                            "DEMARCHES_OUTBOX_DIR": str(workdir / f"demarches-{index + 1}-outbox"),
                            "PYTHONUNBUFFERED": "1"})
            processes.append(LiveProcess(f"démarche app {index + 1}",
                                         [sys.executable, "-m", "clients.demarches"], app_env,
                                         workdir / f"demarches-{index + 1}.log", base, "/"))
        yield Stack(issuer, [f"http://127.0.0.1:{p}" for p in app_ports],
                    Path(env["IDP_MESSAGING__OUTBOX_DIR"]), database_url, env)
    finally:
        for process in reversed(processes):
            process.stop()


def _prepare(env: dict[str, str], app_ports: list[int]) -> list[tuple[str, str]]:
    """Migrate the database and register the two démarche apps (in this process, before
    the provider starts; the provider reads the same database)."""
    from idp import create_app
    from idp.admin.clients import create_client
    from idp.config import load_settings

    settings = load_settings(environ=env)
    app = create_app(settings)
    registered = []
    with app.app_context():
        session = app.extensions["idp"].db.session
        for index, port in enumerate(app_ports):
            base = f"http://127.0.0.1:{port}"
            client_id = f"demarche-{index + 1}"
            _client, secret = create_client(
                session, name=f"Démarche de test {index + 1}", client_id=client_id,
                redirect_uris=[f"{base}/callback"], post_logout_redirect_uris=[f"{base}/"],
                auth_method="client_secret_basic", require_consent=True, home_url=base + "/")
            registered.append((client_id, secret))
        session.commit()
        session.remove()
    app.extensions["idp"].db.engine.dispose()
    return registered


def make_user(stack: Stack, email: str, password: str, **fields) -> None:
    """An account made directly in the provider's database (for journeys that start
    signed up)."""
    from idp import create_app
    from idp.config import load_settings
    from tests.support import make_user as make

    app = create_app(load_settings(environ=stack.env))
    make(app, app.extensions["idp"], email, password, **fields)
    app.extensions["idp"].db.engine.dispose()


# -- the browser ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium():
    if not ENABLED:
        pytest.skip("browser journeys disabled")
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium missing: run scripts/browser-setup"
    assert AXE.exists(), "axe-core missing: run scripts/browser-setup"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# The page's first visible block must not touch the header; every page names its icon.
MIN_GAP_BELOW_HEADER = 12
LAYOUT = """() => {
  const header = document.querySelector('header');
  const main = document.querySelector('main');
  const first = main && [...main.children].find(
    e => e.getBoundingClientRect().height > 0 && getComputedStyle(e).position !== 'absolute');
  return {
    gap: header && first ? Math.round(first.getBoundingClientRect().top
                                      - header.getBoundingClientRect().bottom) : null,
    icon: document.querySelector('link[rel~="icon"]') !== null,
  };
}"""


def slug(text: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")


@dataclass
class Visit:
    """One browser context (a citizen's browser) in one variant, and what it saw."""

    page: object
    variant: str
    name: str
    javascript: bool
    width: int
    checked: list[str] = field(default_factory=list)
    landed: list[str] = field(default_factory=list)
    count: int = 0
    auditor: object = None  # a page with JavaScript, to run axe for a variant without

    def check(self, label: str, page=None) -> None:
        """axe-core on the page as it is (or on another tab, ``page``), and a screenshot."""
        page = page or self.page
        page.wait_for_load_state("load")
        self.count += 1
        ARTIFACTS.mkdir(exist_ok=True)
        target = ARTIFACTS / f"{self.name}--{self.variant}--{self.count:02d}-{slug(label)}.png"
        page.screenshot(path=str(target), full_page=True)
        result = self._axe(page)
        violations = [
            f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] if isinstance(n["target"][0], str) else json.dumps(n["target"])
                        for n in v["nodes"][:5])
            for v in result["violations"]]
        assert violations == [], f"{label} ({page.url}): WCAG 2.1 AA violations:\n" + \
            "\n".join(violations)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{label} ({page.url}) scrolls sideways by {overflow} px"
        layout = page.evaluate(LAYOUT)
        assert layout["icon"], f"{label} ({page.url}): no favicon"
        assert layout["gap"] is None or layout["gap"] >= MIN_GAP_BELOW_HEADER, \
            f"{label} ({page.url}): the content starts {layout['gap']} px below the header"
        self.checked.append(_document(page.url))

    def _axe(self, page) -> dict:
        audited = page
        if not self.javascript:
            # axe needs scripts: audit the page's very HTML (scripts left out, as this
            # browser ran none) in a page that may run them, at the same width.
            audited = self.auditor
            html = re.sub(r"<script\b.*?</script>", "", page.content(), flags=re.S | re.I)
            html = html.replace("<head>", f'<head><base href="{page.url}">', 1)
            audited.set_viewport_size(page.viewport_size)
            audited.set_content(html, wait_until="load")
        audited.add_script_tag(path=str(AXE))
        return audited.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)

    def assert_every_page_checked(self) -> None:
        missed = [url for url in self.landed if url not in self.checked]
        assert missed == [], f"pages visited without a check: {missed}"


def _document(url: str) -> str:
    return url.split("#", 1)[0]


@pytest.fixture(params=list(VARIANTS))
def visit(request, chromium):
    """A fresh browser (cookies and all) in one variant; every page landed on must have
    been checked by the end of the test."""
    width, javascript = VARIANTS[request.param]
    context = chromium.new_context(viewport={"width": width, "height": 900},
                                   java_script_enabled=javascript, locale="fr-FR",
                                   bypass_csp=True, timezone_id="Europe/Paris")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    name = slug(request.node.originalname.removeprefix("test_"))
    current = Visit(page, request.param, name, javascript, width)
    if not javascript:
        current.auditor = chromium.new_context(bypass_csp=True).new_page()

    def landed(frame):
        if frame == page.main_frame:
            current.landed.append(_document(frame.url))
    page.on("framenavigated", landed)
    yield current
    try:
        if request.node.rep_call_failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{name}--{request.param}--failed.png"),
                            full_page=True)
        else:
            current.assert_every_page_checked()
    finally:
        context.close()
        if current.auditor is not None:
            current.auditor.context.close()


@pytest.fixture
def new_visit(chromium, request):
    """Another browser (another citizen or device), in the desktop variant."""
    contexts = []

    def make(variant: str = "desktop") -> Visit:
        width, javascript = VARIANTS[variant]
        context = chromium.new_context(viewport={"width": width, "height": 900},
                                       java_script_enabled=javascript, locale="fr-FR",
                                       bypass_csp=True)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        name = slug(request.node.originalname.removeprefix("test_")) + "-other"
        other = Visit(context.new_page(), variant, name, javascript, width)
        if not javascript:
            other.auditor = chromium.new_context(bypass_csp=True).new_page()
            contexts.append(other.auditor.context)
        return other
    yield make
    for context in contexts:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call_failed = report.failed
    elif not hasattr(item, "rep_call_failed"):
        item.rep_call_failed = report.failed

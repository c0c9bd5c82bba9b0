"""Screenshots of the main pages at 360 px wide, with headless Chromium (run by hand).

``scripts/a11y-screens [--out DIR] [--only WORD]``: starts the provider on a free port (a
throw-away SQLite database, the test captcha), reaches each page in the state named in
tests/test_accessibility.py (PAGES) with a ``requests`` browser, and has Chromium render
the HTML it got, at 360 px wide, against the live server's CSS and scripts. For each page:
``NN-name.png`` in docs/screens/, and a line saying whether anything sticks out to the
right (horizontal scroll) or a control is smaller than 24 px.

Chromium renders a saved copy of each page (``<base href>`` pointing at the server)
because it cannot share the session cookie of the requests browser; the copy has no
Content-Security-Policy header, so an inline style would show here and not in production
(tests/test_accessibility.py forbids them).
"""

from __future__ import annotations

import argparse
import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.a11y import problems  # noqa: E402
from tests.support import (PASSWORD, Browser, RegisteredClient,  # noqa: E402
                           make_user, provider_environment)

CHROMIUM = "/usr/bin/chromium"
WIDTH = 360
# name in PAGES -> window height (a long page gets a tall window, to be seen whole)
SCREENS = {
    "accueil": 800,
    "connexion": 800,
    "connexion : mauvais mot de passe": 1000,
    "consentement": 1000,
    "inscription : erreurs": 3400,
    "mot de passe perdu : situation": 1400,
    "mot de passe perdu : code": 1300,
    "mot de passe perdu : nouveau mot de passe, erreurs": 1500,
    "double authentification : mauvais code": 1100,
    "mon compte : profil": 2000,
    "mon compte : modifier le profil, erreurs": 2200,
    "mon compte : téléphone": 1600,
    "mon compte : sécurité": 1300,
    "mon compte : préférences, erreurs": 1700,
    "mon compte : relations": 1400,
    "mon compte : ajouter un organisme, erreurs": 2000,
    "mon compte : applications utilisées": 1500,
    "mon compte : confidentialité": 2400,
    "mon compte : activer la double authentification": 2400,
    "mon compte : codes de secours": 1700,
    "conditions d'utilisation à accepter": 1000,
    "déconnexion : confirmation": 800,
    "page introuvable (404)": 800,
    "mon compte : accueil avec demandes": 2400,
    "mon compte : mes demandes": 1600,
    "mon compte : mes demandes, détail": 2400,
    "mon compte : notifications": 2400,
    "mon compte : porte-documents": 2000,
    "mon compte : porte-documents, erreurs": 2000,
    "porte-documents : transmettre à une démarche": 2200,
    "mon compte : abonnements": 2600,
    "mon compte : nouvelle démarche en ligne": 1000,
}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# Added to the measured copy only: what sticks out to the right, and small controls.
MEASURE = """<script>
addEventListener("load", function () {
  var width = document.documentElement.clientWidth, out = [];
  if (document.documentElement.scrollWidth > width)
    out.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " px wide");
  function name(e) {
    return e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
      (e.className && e.className.baseVal === undefined && e.className ? "." + e.className.split(" ").join(".") : "") +
      " «" + (e.textContent || e.value || "").trim().slice(0, 40) + "»";
  }
  document.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect(), style = getComputedStyle(e);
    if (!r.width || style.visibility === "hidden" || r.left < -100) return;
    if (r.right > width + 1) out.push("sticks out " + Math.round(r.right - width) + " px: " + name(e));
    var control = e.matches("button, input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea, a.button");
    if (control && (r.height < 24 || r.width < 24)) out.push("smaller than 24 px (" + Math.round(r.width) + "×" + Math.round(r.height) + "): " + name(e));
  });
  var pre = document.createElement("pre");
  pre.id = "a11y-measure";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HttpClient:
    """The little of Flask's test client that tests.support.Browser uses, over HTTP."""

    class Response:
        def __init__(self, response: requests.Response) -> None:
            self.status_code, self.headers = response.status_code, response.headers
            self.data = response.content

    def __init__(self, base: str) -> None:
        self.base, self.http = base, requests.Session()

    def get(self, path: str, **kw):
        return self.Response(self.http.get(self.base + path, allow_redirects=False,
                                           timeout=15, **kw))

    def post(self, path: str, **kw):
        return self.Response(self.http.post(self.base + path, allow_redirects=False,
                                            timeout=15, **kw))


def setup_environment(tmp: Path, port: int) -> dict[str, str]:
    return provider_environment(f"http://127.0.0.1:{port}", f"sqlite:///{tmp / 'screens.sqlite3'}",
                                tmp, "a11y-screens-secret-" + "s" * 32,
                                IDP_REGISTRATION__CAPTCHA_BACKEND="test",
                                IDP_AUTO_MIGRATE="true")


def start_server(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    log = log_path.open("wb")
    server = subprocess.Popen([sys.executable, "-m", "tests.e2e.serve", str(port)], env=env,
                              cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the provider stopped:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(env["IDP_ISSUER"] + "/.well-known/openid-configuration",
                            timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"the provider did not answer:\n{log_path.read_text()[-3000:]}")


def factories(app, svc):
    """The user_factory and client_factory of tests/conftest.py, on the server's database."""
    from idp.admin.clients import create_client

    def user_factory(email=None, password=PASSWORD, **fields):
        fields.setdefault("family_name", "Dupont-Lefèvre")
        return make_user(app, svc, email, password, **fields)

    def client_factory(redirect_uri="https://demarche.example.org/callback", **kw):
        kw.setdefault("name", "Démarche test")
        kw.setdefault("scopes", ["openid", "profile", "email", "phone", "address"])
        with app.app_context():
            client, secret = create_client(svc.db.session, redirect_uris=[redirect_uri], **kw)
            svc.db.session.commit()
            return RegisteredClient(client.client_id, secret, redirect_uri)

    return user_factory, client_factory


def snapshot(html: bytes, base: str, extra: str = "") -> str:
    text = html.decode()
    text = text.replace("<head>", f'<head><base href="{base}/">', 1)
    return text.replace("</body>", extra + "</body>", 1)


def chromium(*args: str, height: int, timeout: int = 60) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="a11y-chromium-")
    try:
        return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               f"--window-size={WIDTH},{height}", *args],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screens"))
    parser.add_argument("--only", help="only the pages whose name contains this")
    options = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)

    tmp = Path(tempfile.mkdtemp(prefix="a11y-screens-"))
    port = free_port()
    env = setup_environment(tmp, port)
    os.environ.update({k: v for k, v in env.items() if k.startswith("IDP_")})
    from idp import create_app
    from tests.test_accessibility import PAGES, Visit

    app = create_app()  # the server's settings, for the test data (users, clients)
    svc = app.extensions["idp"]
    server = start_server(env, port, tmp / "provider.log")
    failures = 0
    try:
        user_factory, client_factory = factories(app, svc)
        user = user_factory(email="marie.dupont-lefevre@example.org")
        for number, name in enumerate(SCREENS, 1):  # numbered the same with --only
            assert name in PAGES, name
            if options.only and options.only not in name:
                continue
            visit = Visit(app, svc, Browser(HttpClient(env["IDP_ISSUER"])), user,
                          user_factory, client_factory)
            visit.local = (env["IDP_ISSUER"],)
            try:
                response = PAGES[name](visit)
            except Exception as exc:  # one page failing does not stop the others
                print(f"{name}: could not reach the page: {exc!r}"[:300])
                failures += 1
                continue
            ascii_name = unicodedata.normalize("NFKD", name.lower()).encode("ascii", "ignore")
            slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.decode()).strip("-")
            page = tmp / f"{number:02d}-{slug}.html"
            page.write_text(snapshot(response.data, env["IDP_ISSUER"]))
            png = out / f"{number:02d}-{slug}.png"
            chromium(f"--screenshot={png}", page.as_uri(), height=SCREENS[name])
            measured = tmp / f"{number:02d}-{slug}-measured.html"
            measured.write_text(snapshot(response.data, env["IDP_ISSUER"], MEASURE))
            dom = chromium("--virtual-time-budget=3000", "--dump-dom", measured.as_uri(),
                           height=SCREENS[name]).stdout
            match = re.search(r'<pre id="a11y-measure">(.*?)</pre>', dom, re.S)
            found = json.loads(html_lib.unescape(match.group(1))) if match else \
                ["could not measure the page"]
            found += problems(response.data)
            failures += bool(found)
            status = "ok" if not found else "; ".join(found)
            print(f"{png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}: {status}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
        svc.db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""The scenarios, as a relying party and a browser drive them, and the load generator.

A scenario is an ``op`` that one client thread repeats (one request, or one complete
sign-in), with an optional ``setup`` run by each thread before the measured window (a
sign-in, to obtain the tokens it then uses). The same code drives our provider and the
reference: what differs is in :class:`Target`, most of it read from discovery.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Callable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import requests
import urllib3


class FlowError(Exception):
    """An answer a relying party or a browser would reject."""


@dataclass
class Target:
    name: str
    issuer: str
    web: tuple[str, str]      # authorization_code + refresh_token, client_secret_basic
    service: tuple[str, str]  # client_credentials
    redirect_uri: str
    scope: str = "openid profile email"
    service_scope: str = ""
    accounts: int = 1         # sign-ins use seed-0000000@bench.invalid ... seed-(N-1)
    password: str = ""
    metadata: dict = field(default_factory=dict)

    def load_metadata(self) -> None:
        self.metadata = requests.get(self.discovery_url, timeout=10).json()
        if self.metadata.get("issuer") != self.issuer:
            raise FlowError(f"discovery names {self.metadata.get('issuer')!r}, "
                            f"not {self.issuer!r}")

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    def endpoint(self, name: str) -> str:
        return self.metadata[name]

    def account(self, slot: int, slots: int) -> str:
        """A random account among those of client thread ``slot``: the threads draw from
        disjoint sets, since the provider rightly refuses a second sign-in to an account
        while one is being checked."""
        i = slot + slots * random.randrange(max(1, (self.accounts - slot) // slots))
        return f"seed-{i:07d}@bench.invalid"


# -- the browser-less sign-in ---------------------------------------------------------------


class Forms(HTMLParser):
    """The forms of a page: action, method, fields and buttons ((name, value, type) each);
    an unchecked box or radio button is not a field, as a browser would not send it."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get")
                               .lower(), "fields": [], "buttons": []})
        elif self.forms and tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            target = self.forms[-1]["buttons" if kind == "submit" else "fields"]
            target.append((a["name"], a.get("value", ""), kind))
        elif self.forms and tag == "button":
            self.forms[-1]["buttons"].append((a.get("name", ""), a.get("value", ""),
                                              a.get("type", "submit")))


LOGIN_NAMES = ("email", "login", "username")
DENY_WORDS = ("deny", "refuser", "abort", "cancel", "annuler")


def next_form(page: str, email: str, password: str) -> tuple[str, dict, bool]:
    """What a person submits on this page: the login form (identifier, password, hidden
    fields such as the CSRF token) or the consent form. (action, fields, is_login)."""
    forms = [f for f in Forms(page).forms if f["method"] == "post"]
    for form in forms:
        if any(kind == "password" for _, _, kind in form["fields"]):
            values = {}
            for name, value, kind in form["fields"]:
                values[name] = (password if kind == "password" else
                                email if name in LOGIN_NAMES else value)
            return form["action"], values, True
    for form in forms:
        buttons = [b for b in form["buttons"]
                   if not any(w in f"{b[0]} {b[1]}".lower() for w in DENY_WORDS)]
        if buttons:
            values = {name: value for name, value, _ in form["fields"]}
            if buttons[0][0]:
                values[buttons[0][0]] = buttons[0][1]
            return form["action"], values, False
    raise FlowError(f"no form to submit on the page: {page[:300]!r}")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(resp: requests.Response) -> dict:
    if resp.status_code != 200:
        raise FlowError(f"{resp.request.method} {resp.url}: HTTP {resp.status_code} "
                        f"{resp.text[:300]!r}")
    return resp.json()


def sign_in(http: requests.Session, target: Target, email: str) -> dict:
    """authorize (code, PKCE, state, nonce) -> login form -> consent if any -> code ->
    token exchange; the token response, checked as a relying party checks it."""
    http.cookies.clear()  # a new browser: no single sign-on session
    verifier = _b64url(secrets.token_bytes(32))
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url = target.endpoint("authorization_endpoint") + "?" + urlencode({
        "client_id": target.web[0], "redirect_uri": target.redirect_uri,
        "response_type": "code", "scope": target.scope, "state": state, "nonce": nonce,
        "code_challenge": _b64url(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256"})
    resp = http.get(url, allow_redirects=False, timeout=30)
    logins = 0
    for _ in range(12):
        if resp.is_redirect:
            location = urljoin(resp.url, resp.headers["Location"])
            if location.startswith(target.redirect_uri):
                break
            resp = http.get(location, allow_redirects=False, timeout=30)
        elif resp.status_code == 200 and "html" in resp.headers.get("Content-Type", ""):
            action, values, is_login = next_form(resp.text, email, target.password)
            logins += is_login
            if logins > 1:
                raise FlowError(f"the login form again after a login ({resp.url})")
            resp = http.post(urljoin(resp.url, action or resp.url), data=values,
                             allow_redirects=False, timeout=30)
        else:
            raise FlowError(f"HTTP {resp.status_code} at {resp.url}: {resp.text[:300]!r}")
    else:
        raise FlowError("no redirect to the client after 12 steps")
    params = dict(parse_qsl(urlsplit(location).query))
    if params.get("state") != state or "code" not in params:
        raise FlowError(f"callback without the code or with another state: {params}")
    if params.get("iss", target.issuer) != target.issuer:
        raise FlowError(f"callback from another issuer: {params['iss']}")
    tokens = _json(http.post(target.endpoint("token_endpoint"), auth=target.web, timeout=30,
                             data={"grant_type": "authorization_code", "code": params["code"],
                                   "redirect_uri": target.redirect_uri,
                                   "code_verifier": verifier}))
    claims = tokens["id_token"].split(".")[1]
    if json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["nonce"] != nonce:
        raise FlowError("the ID token carries another nonce")
    if not tokens.get("access_token") or not tokens.get("refresh_token"):
        raise FlowError(f"token response without access or refresh token: {sorted(tokens)}")
    return tokens


# -- scenarios ------------------------------------------------------------------------------


class Client:
    """One client thread: a browser for the sign-in (``requests``, which keeps cookies),
    a relying party's server for the other requests (``urllib3``, lighter: the client
    shares the cores with the provider), each keeping its connection alive."""

    def __init__(self, target: Target, slot: int, slots: int) -> None:
        self.target, self.slot, self.slots = target, slot, slots
        self.http = requests.Session()
        self.pool = urllib3.PoolManager(maxsize=1, retries=False, timeout=10)
        self.tokens: dict = {}

    def sign_in(self) -> dict:
        return sign_in(self.http, self.target, self.target.account(self.slot, self.slots))

    def call(self, endpoint: str, fields: dict | None = None, auth: tuple[str, str] = ("", ""),
             bearer: str = "") -> dict:
        """GET the endpoint (POST when there are ``fields``); its JSON answer, or FlowError."""
        url = self.target.discovery_url if endpoint == "discovery" else \
            self.target.endpoint(endpoint)
        headers = urllib3.make_headers(basic_auth=":".join(auth)) if auth[0] else {}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        resp = self.pool.request("POST", url, fields=fields, headers=headers,
                                 encode_multipart=False) if fields else \
            self.pool.request("GET", url, headers=headers)
        if resp.status != 200:
            raise FlowError(f"{url}: HTTP {resp.status} {resp.data[:300]!r}")
        return resp.json()

    def close(self) -> None:
        self.http.close()
        self.pool.clear()


@dataclass
class Scenario:
    key: str
    title: str
    op: Callable[[Client], None]
    setup: Callable[[Client], None] | None = None


def _discovery(c: Client) -> None:
    if c.call("discovery")["issuer"] != c.target.issuer:
        raise FlowError("discovery names another issuer")


def _jwks(c: Client) -> None:
    if not c.call("jwks_uri").get("keys"):
        raise FlowError("empty JWKS")


def _client_credentials(c: Client) -> None:
    fields = {"grant_type": "client_credentials"}
    if c.target.service_scope:
        fields["scope"] = c.target.service_scope
    if not c.call("token_endpoint", fields, auth=c.target.service).get("access_token"):
        raise FlowError("no access token")


def _signed_in(c: Client) -> None:
    c.tokens = c.sign_in()


def _refresh(c: Client) -> None:
    if "refresh_token" not in c.tokens:  # the last one failed: sign in again
        _signed_in(c)
    old = c.tokens.pop("refresh_token")
    tokens = c.call("token_endpoint", {"grant_type": "refresh_token", "refresh_token": old},
                    auth=c.target.web)
    if not tokens.get("access_token") or tokens.get("refresh_token") in (None, old):
        raise FlowError("refresh without rotation")
    c.tokens = tokens


def _access_token(c: Client) -> str:
    if "access_token" not in c.tokens:
        _signed_in(c)
    return c.tokens["access_token"]


def _userinfo(c: Client) -> None:
    if not c.call("userinfo_endpoint", bearer=_access_token(c)).get("sub"):
        raise FlowError("userinfo without sub")


def _introspection(c: Client) -> None:
    answer = c.call("introspection_endpoint", {"token": _access_token(c)}, auth=c.target.web)
    if answer.get("active") is not True:
        raise FlowError("a valid token introspected as inactive")


def _sign_in(c: Client) -> None:
    c.sign_in()


SCENARIOS = {s.key: s for s in (
    Scenario("discovery", "Discovery document", _discovery),
    Scenario("jwks", "JWKS", _jwks),
    Scenario("client_credentials", "`client_credentials` grant", _client_credentials),
    Scenario("refresh", "Refresh with rotation", _refresh, _signed_in),
    Scenario("signin", "Complete sign-in", _sign_in),
    Scenario("userinfo", "Userinfo", _userinfo, _signed_in),
    Scenario("introspection", "Introspection", _introspection, _signed_in),
)}


# -- load ----------------------------------------------------------------------------------


@dataclass
class Load:
    ops: int
    errors: int
    seconds: float
    latencies: list[float]
    error_samples: list[str]

    def percentile(self, q: float) -> float | None:
        """Nearest rank, in milliseconds."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def run_load(target: Target, scenario: Scenario, *, concurrency: int, warmup: float,
             duration: float, on_start: Callable[[], None], on_end: Callable[[], None],
             rate: float | None = None) -> Load:
    """``scenario`` from ``concurrency`` threads. Closed loop (``rate`` None): each thread
    starts its next op when the previous one ends. Fixed rate: op *i* is due at
    ``start + i / rate`` and its latency counts from then, so a server falling behind is
    charged for the wait it causes. ``on_start``/``on_end`` run at the measured window's
    edges, after ``warmup``. Errors count everywhere, setup and warm-up included."""
    lock, stop = threading.Lock(), threading.Event()
    ready = threading.Barrier(concurrency + 1)
    samples: list[tuple[float, float, bool]] = []
    errors: list[str] = []
    due = iter(range(10 ** 12))
    start = [0.0]

    def fail(exc: Exception) -> None:
        with lock:
            errors.append(f"{type(exc).__name__}: {exc}"[:400])

    def body(slot: int) -> None:
        client = Client(target, slot, concurrency)
        try:
            if scenario.setup:
                scenario.setup(client)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            fail(exc)
        try:
            ready.wait(timeout=300)
        except threading.BrokenBarrierError:
            return
        own = []
        while not stop.is_set():
            begin = time.perf_counter()
            if rate is not None:
                with lock:
                    begin = start[0] + next(due) / rate
                if stop.wait(max(0.0, begin - time.perf_counter())):
                    break
            ok = True
            try:
                scenario.op(client)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                ok = False
                fail(exc)
                stop.wait(0.05)  # a failing server answers fast: do not spin
            own.append((begin, time.perf_counter(), ok))
        client.close()
        with lock:
            samples.extend(own)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        ready.wait(timeout=300)
    except threading.BrokenBarrierError:
        raise FlowError(f"{scenario.key}: client threads not ready ({errors[:3]})") from None
    start[0] = time.perf_counter()
    time.sleep(warmup)
    on_start()
    window = time.perf_counter()
    time.sleep(duration)
    window_end = time.perf_counter()
    on_end()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    inside = [(b, e) for b, e, ok in samples if ok and window <= e <= window_end]
    return Load(ops=len(inside), errors=len(errors), seconds=window_end - window,
                latencies=[e - b for b, e in inside], error_samples=errors[:5])

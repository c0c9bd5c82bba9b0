"""The benchmark scenarios and the closed-loop and fixed-rate load generators.

A scenario is an ``op`` that one worker thread repeats (one request, or one complete
sign-in flow), with an optional ``setup`` run by each worker before the measured window
(e.g. a sign-in to obtain the refresh token it will then rotate). The same code drives
both providers: everything provider-specific is in :class:`Target`, read from the
provider's discovery document.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import random
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

from httpclient import (Connection, CookieJar, HttpError, Response, basic_auth, form_fields,
                        parse_forms)


@dataclass
class Client:
    client_id: str
    client_secret: str
    scope: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return basic_auth(self.client_id, self.client_secret)


@dataclass
class Target:
    """One provider under test, as the load generator sees it."""

    name: str
    issuer: str
    web: Client                 # authorization_code + refresh_token, client_secret_basic
    service: Client             # client_credentials
    redirect_uri: str
    email: str
    password: str
    signin_scope: str = "openid profile email"
    version: str = ""
    # When set, each sign-in picks one of the accounts seeded by bench/seed.py at
    # random (seed-0000001@bench.invalid ...), all with password ``seed_password``.
    seeded_accounts: int = 0
    seed_password: str = ""
    metadata: dict = field(default_factory=dict)

    def credentials(self, slot: int = 0, slots: int = 1) -> tuple[str, str]:
        """A seeded account at random among those of worker ``slot`` of ``slots`` (the
        workers draw from disjoint sets: our provider rightly refuses a second sign-in
        to an account while one is being checked), else the one fixed account."""
        if self.seeded_accounts >= slots:
            i = slot + 1 + slots * random.randrange((self.seeded_accounts - slot) // slots)
            return f"seed-{i:07d}@bench.invalid", self.seed_password
        return self.email, self.password

    def load_metadata(self, timeout: float = 10.0) -> None:
        conn = Connection(self.issuer, timeout)
        try:
            resp = conn.get(self.discovery_url)
            if resp.status != 200:
                raise HttpError(f"discovery: HTTP {resp.status}")
            self.metadata = resp.json()
        finally:
            conn.close()
        if self.metadata.get("issuer") != self.issuer:
            raise HttpError(f"discovery issuer {self.metadata.get('issuer')!r} "
                            f"is not {self.issuer!r}")

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    def endpoint(self, name: str) -> str:
        url = self.metadata.get(name)
        if not url:
            raise HttpError(f"{self.name}: no {name} in the discovery document")
        return url


# -- the sign-in flow ------------------------------------------------------------------

ALLOW_WORDS = ("allow", "autoriser", "accept", "consent", "continue", "continuer")
DENY_WORDS = ("deny", "refuser", "cancel", "annuler", "abort")
LOGIN_FIELDS = ("email", "login", "username")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt_claims(token: str) -> dict:
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise HttpError(f"not a JWT: {token[:40]!r}") from exc


def _choose_button(buttons: list[dict[str, str]]) -> dict[str, str] | None:
    def words(button: dict[str, str]) -> str:
        return " ".join(button.get(k, "") for k in ("name", "value", "text")).lower()
    for button in buttons:
        if any(w in words(button) for w in ALLOW_WORDS[:2]):
            return button
    for button in buttons:
        if not any(w in words(button) for w in DENY_WORDS):
            return button
    return None


def _next_form_submission(resp: Response, logins: int, email: str, password: str):
    """What a person would submit on this page: the login form (identifier + password)
    or the consent form (its allow button). Returns (url, fields, is_login)."""
    forms = [f for f in parse_forms(resp.text) if f.method == "post"]
    login = next((f for f in forms if f.has_password()), None)
    if login is not None:
        if logins >= 1:
            raise HttpError(f"login form shown again after a login at {resp.url} "
                            "(wrong password, rate limit or lockout?)")
        values = {i["name"]: email for i in login.inputs
                  if i.get("name") in LOGIN_FIELDS}
        if not values:
            raise HttpError(f"login form at {resp.url} has no email/login field")
        for item in login.inputs:
            if item.get("type", "").lower() == "password" and item.get("name"):
                values[item["name"]] = password
        button = _choose_button(login.buttons)
        return urllib.parse.urljoin(resp.url, login.action or resp.url), \
            form_fields(login, values, button), True
    candidates = [(f, _choose_button(f.buttons)) for f in forms if f.buttons]
    candidates = [(f, b) for f, b in candidates if b is not None]
    # Prefer a form whose button says allow/autoriser, else the only remaining one.
    preferred = [(f, b) for f, b in candidates
                 if any(w in " ".join(b.values()).lower() for w in ALLOW_WORDS)]
    chosen = preferred or candidates
    if len(chosen) != 1 and not preferred:
        raise HttpError(f"cannot tell which form to submit at {resp.url}: "
                        f"{len(forms)} POST forms; body starts {resp.text[:300]!r}")
    form, button = chosen[0]
    return urllib.parse.urljoin(resp.url, form.action or resp.url), \
        form_fields(form, {}, button), False


def sign_in(conn: Connection, target: Target, *, with_userinfo: bool = True,
            credentials: tuple[str, str] | None = None) -> dict:
    """authorize -> login form -> consent if any -> code -> token (-> userinfo).

    Returns the token response. Raises HttpError on anything a client would reject.
    """
    email, password = credentials or target.credentials()
    jar = CookieJar()
    verifier = _b64url(secrets.token_bytes(32))
    challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    query = urllib.parse.urlencode({
        "client_id": target.web.client_id, "redirect_uri": target.redirect_uri,
        "response_type": "code", "scope": target.signin_scope, "state": state,
        "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"})
    resp = conn.get(f"{target.endpoint('authorization_endpoint')}?{query}", jar=jar)
    logins, callback = 0, None
    for _ in range(16):
        if resp.status in (301, 302, 303, 307, 308):
            location = urllib.parse.urljoin(resp.url, resp.header("Location") or "")
            if location.startswith(target.redirect_uri):
                callback = location
                break
            resp = conn.get(location, jar=jar)
        elif resp.status == 200 and "html" in (resp.header("Content-Type") or ""):
            url, fields, is_login = _next_form_submission(resp, logins, email, password)
            logins += is_login
            resp = conn.post_form(url, fields, jar=jar)
        else:
            raise HttpError(f"unexpected HTTP {resp.status} at {resp.url}: {_visible(resp)}")
    if callback is None:
        raise HttpError("no redirect to the client after 16 steps")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
    if params.get("state") != state:
        raise HttpError(f"state mismatch in {callback}")
    if "error" in params or "code" not in params:
        raise HttpError(f"authorization error: {params}")
    if "iss" in params and params["iss"] != target.issuer:
        raise HttpError(f"iss mismatch: {params['iss']}")
    tokens = exchange_code(conn, target, params["code"], verifier)
    if _jwt_claims(tokens["id_token"]).get("nonce") != nonce:
        raise HttpError("nonce mismatch in the ID token")
    if with_userinfo:
        userinfo(conn, target, tokens["access_token"])
    return tokens


def _visible(resp: Response, limit: int = 300) -> str:
    """What a person would read on an error page: its text without the markup."""
    text = resp.text
    if "html" not in (resp.header("Content-Type") or ""):
        return repr(text[:limit])
    for marker in ("<main", "<body"):
        if marker in text:
            text = text[text.index(marker):]
            break
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    text = re.sub(r"<[^>]+>", " ", text)
    return repr(" ".join(html.unescape(text).split())[:limit])


def exchange_code(conn: Connection, target: Target, code: str, verifier: str) -> dict:
    resp = conn.post_form(target.endpoint("token_endpoint"), {
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": target.redirect_uri, "code_verifier": verifier,
    }, headers=target.web.auth)
    tokens = _expect_json(resp, 200)
    for key in ("access_token", "id_token", "refresh_token"):
        if not tokens.get(key):
            raise HttpError(f"token response without {key}: {sorted(tokens)}")
    return tokens


def userinfo(conn: Connection, target: Target, access_token: str) -> dict:
    resp = conn.get(target.endpoint("userinfo_endpoint"),
                    headers={"Authorization": f"Bearer {access_token}"})
    claims = _expect_json(resp, 200)
    if not claims.get("sub"):
        raise HttpError(f"userinfo without sub: {claims}")
    return claims


def _expect_json(resp: Response, status: int) -> dict:
    if resp.status != status:
        raise HttpError(f"{resp.url}: HTTP {resp.status} {resp.body[:300]!r}")
    return resp.json()


# -- scenarios ---------------------------------------------------------------------------


class Worker:
    """Per-thread state: a connection and whatever the scenario keeps between ops."""

    def __init__(self, target: Target, timeout: float, slot: int = 0, slots: int = 1) -> None:
        self.target = target
        self.slot, self.slots = slot, slots
        self.conn = Connection(target.issuer, timeout)
        self.state: dict = {}


@dataclass
class Scenario:
    key: str
    title: str
    unit: str                                   # what one op is: "request", "flow", ...
    op: Callable[[Worker], None]
    setup: Callable[[Worker], None] | None = None


def _discovery(w: Worker) -> None:
    doc = _expect_json(w.conn.get(w.target.discovery_url), 200)
    if doc.get("issuer") != w.target.issuer:
        raise HttpError("discovery issuer mismatch")


def _jwks(w: Worker) -> None:
    if not _expect_json(w.conn.get(w.target.endpoint("jwks_uri")), 200).get("keys"):
        raise HttpError("empty JWKS")


def _client_credentials(w: Worker) -> None:
    fields = {"grant_type": "client_credentials"}
    if w.target.service.scope:
        fields["scope"] = w.target.service.scope
    tokens = _expect_json(w.conn.post_form(w.target.endpoint("token_endpoint"), fields,
                                           headers=w.target.service.auth), 200)
    if not tokens.get("access_token"):
        raise HttpError("no access_token")


def _setup_signed_in(w: Worker) -> None:
    tokens = sign_in(w.conn, w.target, with_userinfo=False,
                     credentials=w.target.credentials(w.slot, w.slots))
    w.state["refresh_token"] = tokens["refresh_token"]
    w.state["access_token"] = tokens["access_token"]


def _refresh(w: Worker) -> None:
    token = w.state.get("refresh_token")
    if token is None:  # lost after an error: sign in again (outside the op's count)
        _setup_signed_in(w)
        token = w.state["refresh_token"]
    resp = w.conn.post_form(w.target.endpoint("token_endpoint"),
                            {"grant_type": "refresh_token", "refresh_token": token},
                            headers=w.target.web.auth)
    try:
        tokens = _expect_json(resp, 200)
    except HttpError:
        w.state.pop("refresh_token", None)
        raise
    new = tokens.get("refresh_token")
    if not new or new == token or not tokens.get("access_token"):
        w.state.pop("refresh_token", None)
        raise HttpError("refresh without rotation (no new refresh_token)")
    w.state["refresh_token"] = new


def _signin(w: Worker) -> None:
    sign_in(w.conn, w.target, with_userinfo=True,
            credentials=w.target.credentials(w.slot, w.slots))


def _access_token(w: Worker) -> str:
    if "access_token" not in w.state:  # the setup failed: sign in again (not counted)
        _setup_signed_in(w)
    return w.state["access_token"]


def _introspect(w: Worker) -> None:
    resp = w.conn.post_form(w.target.endpoint("introspection_endpoint"),
                            {"token": _access_token(w)}, headers=w.target.web.auth)
    if _expect_json(resp, 200).get("active") is not True:
        raise HttpError("introspection: token not active")


def _userinfo(w: Worker) -> None:
    userinfo(w.conn, w.target, _access_token(w))


SCENARIOS: dict[str, Scenario] = {s.key: s for s in (
    Scenario("discovery", "1a. Discovery document", "request", _discovery),
    Scenario("jwks", "1b. JWKS", "request", _jwks),
    Scenario("client_credentials", "2. client_credentials grant", "grant", _client_credentials),
    Scenario("refresh_token", "3. refresh_token grant with rotation", "grant", _refresh,
             _setup_signed_in),
    Scenario("signin", "4. Complete sign-in flow", "flow", _signin),
    Scenario("introspection", "5a. Introspection of a valid token", "request", _introspect,
             _setup_signed_in),
    Scenario("userinfo", "5b. Userinfo with a valid token", "request", _userinfo,
             _setup_signed_in),
)}


# -- load generation ---------------------------------------------------------------------


@dataclass
class Window:
    start: float
    end: float


@dataclass
class LoadResult:
    ops: int                      # successful ops completed inside the window
    errors: int                   # failed ops, anywhere (setup, warm-up, window)
    window_errors: int
    requests: int                 # HTTP requests of those ops (a flow makes several)
    seconds: float
    latencies: list[float]        # seconds, successful ops of the window
    error_samples: list[str]
    scheduled_rate: float | None = None   # fixed-rate runs only

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile over all samples (no interpolation, no sampling)."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1]


ERROR_BACKOFF = 0.05  # seconds a worker pauses after a failed op


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.errors = 0
        self.error_samples: list[str] = []

    def error(self, exc: BaseException) -> None:
        with self.lock:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"{type(exc).__name__}: {exc}"[:500])


def run_load(target: Target, scenario: Scenario, *, concurrency: int, warmup: float,
             duration: float, on_window_start: Callable[[], None],
             on_window_end: Callable[[], None], rate: float | None = None,
             timeout: float = 10.0, setup_timeout: float = 120.0) -> LoadResult:
    """Run ``scenario`` with ``concurrency`` threads.

    Closed loop (``rate`` None): each thread starts its next op as soon as the previous
    one ends; latency is the op's duration. Fixed rate: op *i* is due at
    ``start + i / rate`` and its latency is measured from that due time, so that a server
    falling behind is charged for the queueing it causes (no coordinated omission).

    ``on_window_start``/``on_window_end`` are called by the coordinating thread right at
    the measured window's edges (after ``warmup``), to sample the servers' CPU.
    """
    recorder = _Recorder()
    stop = threading.Event()
    ready = threading.Barrier(concurrency + 1)
    samples: list[list[tuple[float, float, bool, int]]] = [[] for _ in range(concurrency)]
    counter = iter(range(10**12))
    counter_lock = threading.Lock()
    clock = time.perf_counter
    start_box: list[float] = []

    def body(index: int) -> None:
        worker = Worker(target, timeout, index, concurrency)
        own = samples[index]
        try:
            if scenario.setup is not None:
                try:
                    scenario.setup(worker)
                except Exception as exc:  # noqa: BLE001 - counted, reported
                    recorder.error(exc)
            try:
                ready.wait(timeout=setup_timeout)
            except threading.BrokenBarrierError:
                return
            while not stop.is_set():
                if rate is None:
                    begin = clock()
                else:
                    with counter_lock:
                        i = next(counter)
                    begin = start_box[0] + i / rate
                    delay = begin - clock()
                    if delay > 0:
                        if stop.wait(delay):
                            break
                ok, requests = True, worker.conn.requests
                try:
                    scenario.op(worker)
                except Exception as exc:  # noqa: BLE001 - counted, reported
                    ok = False
                    recorder.error(exc)
                own.append((begin, clock(), ok, worker.conn.requests - requests))
                if not ok:
                    # A failing server answers fast: do not let an error loop spin the
                    # cores the other workers and the server need.
                    stop.wait(ERROR_BACKOFF)
        finally:
            worker.conn.close()

    threads = [threading.Thread(target=body, args=(i,), daemon=True, name=f"load-{i}")
               for i in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        ready.wait(timeout=setup_timeout)
    except threading.BrokenBarrierError:
        stop.set()
        raise HttpError(f"{scenario.key}: workers not ready within {setup_timeout}s "
                        f"({recorder.errors} setup errors: {recorder.error_samples})")
    start_box.append(clock())
    time.sleep(warmup)
    on_window_start()
    window = Window(clock(), 0.0)
    time.sleep(duration)
    window.end = clock()
    on_window_end()
    stop.set()
    for thread in threads:
        thread.join(timeout=timeout + 5)

    latencies, ops, window_errors, requests = [], 0, 0, 0
    for own in samples:
        for begin, end, ok, count in own:
            if window.start <= end <= window.end:
                if ok:
                    ops += 1
                    requests += count
                    latencies.append(end - begin)
                else:
                    window_errors += 1
    return LoadResult(ops=ops, errors=recorder.errors, window_errors=window_errors,
                      requests=requests,
                      seconds=window.end - window.start, latencies=latencies,
                      error_samples=recorder.error_samples, scheduled_rate=rate)

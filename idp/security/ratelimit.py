"""Per-IP rate limits, kept in the key-value store (Redis in production) so that they
hold across processes and instances.

One ``before_request`` hook (:func:`install`) looks the request's endpoint up in
:data:`RULES` (endpoint patterns -> names of ``rate_limits`` settings such as
``login_per_ip = "30/minute"``) and counts the request against each matching limit,
keyed by (rule, IP). Only POST requests are counted: showing a form costs nothing,
submitting it is what an attacker repeats. Over the limit the answer is a 429 with a
``Retry-After`` header: a French HTML page for browsers, ``{"error": "slow_down"}`` for
the API endpoints.

The counter is a sliding window approximated from two fixed windows (the current one
and the previous one, weighted by how much of it still overlaps the sliding window).
Every request is counted first (:data:`COUNT_AND_READ_PREVIOUS`, atomic in Redis and in
the in-process store; it reads the previous window in the same round trip) and then compared
with the limit, so concurrent requests cannot all slip in between a read and a write:
within one window no more than ``limit`` requests pass.

Views may also count against a rule themselves: :func:`hit` (``RateLimited`` when over).

The endpoints where relying parties authenticate (token, introspection, revocation) are
counted differently (:class:`ClientFailures`): only their *failed* answers, and
only those not given to a client that proved who it is with a secret or a key. A busy
démarche's backend sends all its users' requests from one address, so counting every
request would throttle it on a deadline day; and an attacker who makes it send made-up
codes must not get its address blocked. What is left is what a limit protects against:
guessing client credentials, and floods of requests no client vouches for. Each process
remembers the addresses found over the limit (:class:`LocalBlocks`) and answers them 429
without asking the store, so a successful request costs no store round trip at all; the
count itself is shared, and another process learns of a block at the address's next
failure there.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import ipaddress
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, jsonify, make_response, render_template, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from ..metrics import RATE_LIMITED
from ..persistence.kv import UNAVAILABLE, Keys, Script
from ..paths import is_api_path

log = logging.getLogger(__name__)

# Patched by tests to move time forward.
clock = time.time

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")

# Endpoint pattern (fnmatch) -> rate_limits setting, for POST requests. An endpoint may
# match several rules; every matching rule counts the request.
RULES: tuple[tuple[str, str], ...] = (
    ("login.start", "login_per_ip"),
    ("login.reauthenticate", "login_per_ip"),
    ("registration.start", "register_per_ip"),
    ("registration.resend", "code_send_per_ip"),
    ("registration.resend_for_login", "code_send_per_ip"),
    ("registration.confirm_email", "code_verify_per_ip"),
    # Giving the address starts a recovery and sends a code; the other steps are cheap
    # (choosing a population) or already bound to a sent code.
    ("recovery.email", "recovery_per_ip"),
    ("recovery.code", "code_verify_per_ip"),
    ("mfa.*", "code_verify_per_ip"),
    ("account.mfa_*", "code_verify_per_ip"),
    # "Mon compte": giving a new address or number sends a code or a link to it.
    ("account.contact", "code_send_per_ip"),
    ("account.change_login_email", "code_send_per_ip"),
    ("account.*send*", "code_send_per_ip"),
    ("account.*code*", "code_verify_per_ip"),
    ("account.*verify*", "code_verify_per_ip"),
    ("account.*confirm*", "code_verify_per_ip"),
    # Dynamic client registration (RFC 7591), with an initial access token.
    ("oidc.client_registration", "client_registration_per_ip"),
)

# Endpoints that store a new flow (and with it a browser session) when called without
# one: every such request counts against this setting, GET included, so that nobody
# can fill the store with abandoned flows.
FLOW_STARTS = ("oidc.authorize", "login.start", "registration.start", "recovery.start")
FLOWS_RULE = "flows_per_ip"

# Where clients authenticate (token, introspection, revocation), their failures count
# against this setting (see the module's docstring), not every POST.
CLIENT_FAILURES_RULE = "client_failures_per_ip"

SLOW_DOWN_MESSAGE = _l("Trop de demandes ont été envoyées depuis votre connexion. "
                        "Patientez %(wait)s avant de réessayer.")


class RateLimited(Exception):
    def __init__(self, rule: str, retry_after: int) -> None:
        super().__init__(rule)
        self.rule = rule
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}s"


def parse_limits(text: str) -> list[Limit]:
    """``"30/minute"``, ``"5/hour, 10/day"``, ``"3/10minutes"``. Empty: no limit."""
    limits = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = _LIMIT_RE.match(part.lower())
        if not match:
            raise ValueError(f"bad rate limit {part.strip()!r} (expected e.g. '30/minute')")
        count, multiplier, unit = match.groups()
        limits.append(Limit(int(count), int(multiplier or 1) * UNITS[unit]))
    return limits


def ip_key(address: str | None) -> str:
    """The IP address as counted: an IPv6 address counts for its whole /64 (one
    subscriber usually holds a /64 and may pick any address in it)."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address) + "/64"
    return str(ip)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _count_and_read_previous_locally(kv: Keys, keys: list[str], args: list) -> list:
    return [kv.incr(keys[0], int(args[0])), kv.get(keys[1])]


# INCR with EXPIRE NX (the window starts at its first hit) and GET of the previous window.
COUNT_AND_READ_PREVIOUS = Script(lua="""
local value = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return {value, redis.call('GET', KEYS[2])}
""", local=_count_and_read_previous_locally)


def count(kv, name: str, subject: str, limit: Limit, now: float | None = None) -> int:
    """Count one event of ``subject`` under ``name``; 0 when allowed, otherwise the
    number of seconds after which it would be."""
    now = clock() if now is None else now
    window = limit.seconds
    index = int(now // window)
    base = f"rl:{name}:{_digest(subject)}:{window}:"
    # Counted first (atomically), and the previous window read in the same round trip.
    current, raw_previous = kv.run(COUNT_AND_READ_PREVIOUS,
                                   [base + str(index), base + str(index - 1)],
                                   [window * 2 + 1])
    current = int(current)
    if current > limit.count:
        return _retry_after(current, 0, limit, now)
    previous = int(raw_previous or 0)
    elapsed = (now % window) / window
    weighted = previous * (1.0 - elapsed)
    if current + math.floor(weighted) > limit.count:
        return _retry_after(current, previous, limit, now)
    return 0


def _retry_after(current: int, previous: int, limit: Limit, now: float) -> int:
    window = limit.seconds
    into = now % window
    if current <= limit.count:
        # Only the previous window's weight is in the way: wait until it has faded enough.
        # previous * (1 - t/window) + current <= limit  <=>  t >= window * (1 - room/previous)
        room = limit.count - current
        needed = window * (1.0 - room / previous) if previous else 0.0
        return max(1, math.ceil(needed - into))
    # Wait for the end of this window, then for its count to fade below the limit.
    fade = window * (1.0 - (limit.count - 1) / current) if current else 0.0
    return max(1, math.ceil(window - into + fade))


def hit(kv, settings, rule: str, subject: str) -> None:
    """Count one request of ``subject`` (usually the IP) under the setting ``rule`` of
    ``rate_limits``; raise :class:`RateLimited` when over any of its limits."""
    if not settings.rate_limits.enabled:
        return
    wait = 0
    for limit in parse_limits(getattr(settings.rate_limits, rule)):
        wait = max(wait, count(kv, rule, subject, limit))
    if wait:
        RATE_LIMITED.labels(rule).inc()
        raise RateLimited(rule, wait)


def hit_failure(kv, settings, rule: str, subject: str) -> int:
    """Count one failure of ``subject``; the seconds for which its next request is to be
    refused (0: not refused). ``N/minute`` allows N failures: the one that reaches N
    blocks the next request."""
    if not settings.rate_limits.enabled:
        return 0
    wait = 0
    for limit in parse_limits(getattr(settings.rate_limits, rule)):
        # A count over N - 1 is a count that has reached N.
        wait = max(wait, count(kv, rule, subject, Limit(max(0, limit.count - 1), limit.seconds)))
    return wait


class LocalBlocks:
    """The addresses this process found over a limit, and until when (bounded: under a
    spray of addresses the entries ending soonest make room)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, subject: str, now: float) -> int:
        until = self._until.get(subject)
        if until is None:
            return 0
        if until <= now:
            with self._lock:
                if self._until.get(subject, now + 1) <= now:
                    del self._until[subject]
            return 0
        return max(1, math.ceil(until - now))

    def block(self, subject: str, until: float, now: float) -> None:
        with self._lock:
            if subject not in self._until and len(self._until) >= self.max_entries:
                for expired in [k for k, v in self._until.items() if v <= now]:
                    del self._until[expired]
                while len(self._until) >= self.max_entries:
                    del self._until[min(self._until, key=self._until.__getitem__)]
            self._until[subject] = max(until, self._until.get(subject, 0.0))

    def __len__(self) -> int:
        return len(self._until)


class ClientFailures:
    """The limit of the client-authenticating endpoints (see the module's docstring): a
    failed answer not vouched for by an authenticated client counts against its address,
    and an address over the limit is refused by this process without asking the store."""

    def __init__(self, kv, settings) -> None:
        self.kv = kv
        self.settings = settings
        self.blocks = LocalBlocks()

    def wait(self, address: str | None) -> int:
        """Seconds before ``address`` may call again (0: now)."""
        wait = self.blocks.wait(ip_key(address), clock())
        if wait:
            RATE_LIMITED.labels(CLIENT_FAILURES_RULE).inc()
        return wait

    def failed(self, address: str | None, endpoint: str) -> None:
        """Count one failure of ``address`` on ``endpoint`` (a name, for the log)."""
        subject = ip_key(address)
        wait = hit_failure(self.kv, self.settings, CLIENT_FAILURES_RULE, subject)
        if wait:
            now = clock()
            if not self.blocks.wait(subject, now):
                log.warning("rate limit %s reached by %s on %s", CLIENT_FAILURES_RULE,
                            subject, endpoint)
            self.blocks.block(subject, now + wait, now)


def rules_for(endpoint: str | None) -> list[str]:
    if not endpoint:
        return []
    return list(dict.fromkeys(setting for pattern, setting in RULES
                              if fnmatch.fnmatchcase(endpoint, pattern)))


def format_wait(seconds: int) -> str:
    """``"2 secondes"``, ``"5 minutes"`` (rounded up), ``"1 heure"``, ``"environ 1 heure"``
    (63 minutes: to the nearest hour, not "2 heures"), in the UI language."""
    seconds = max(1, int(seconds))
    if seconds < 60:
        return ngettext("%(num)d seconde", "%(num)d secondes", seconds)
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return ngettext("%(num)d minute", "%(num)d minutes", minutes)
    hours = max(1, round(minutes / 60))
    if minutes == hours * 60:
        return ngettext("%(num)d heure", "%(num)d heures", hours)
    return ngettext("environ %(num)d heure", "environ %(num)d heures", hours)


def format_return_time(seconds: int, timezone: str, locale: str | None = None) -> str:
    """When to come back: ``"14:05"`` today, ``"07/12/2026 à 14:05"`` another day, in the
    service's time zone (with its abbreviation)."""
    now = dt.datetime.now(dt.timezone.utc).astimezone(ZoneInfo(timezone))
    back = now + dt.timedelta(seconds=max(0, int(seconds)) + 59)
    back = back.replace(second=0, microsecond=0)
    joiner = "at" if (locale or "fr").startswith("en") else "à"
    day = "" if back.date() == now.date() else f"{back:%d/%m/%Y} {joiner} "
    return f"{day}{back:%H:%M} ({back.tzname()})"


def too_many_requests(retry_after: int):
    """The 429 answer: JSON for API paths, the French page otherwise."""
    message = str(SLOW_DOWN_MESSAGE % {"wait": format_wait(retry_after)})
    if is_api_path(request.path) or (
            request.accept_mimetypes.best == "application/json"):
        response = jsonify(slow_down(retry_after))
        response.status_code = 429
    else:
        settings = current_app.extensions["idp"].settings
        response = make_response(render_template(
            "errors/429.html", message=message, retry_after=retry_after,
            return_time=format_return_time(retry_after, settings.display_timezone,
                                           str(get_locale() or "fr"))), 429)
    response.headers["Retry-After"] = str(retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def slow_down(retry_after: int) -> dict[str, object]:
    """The body of an API endpoint's 429 (``Retry-After`` goes with it)."""
    return {"error": "slow_down",
            "error_description": str(SLOW_DOWN_MESSAGE % {"wait": format_wait(retry_after)}),
            "retry_after": retry_after}


def install(app: Flask, kv, settings, client_authenticating: tuple[str, ...]
            ) -> ClientFailures:
    """Count every POST against its endpoint's limits. Install it before the CSRF check
    (Flask runs hooks in the order they were added): an invalid form costs the attacker
    as much as a valid one. On ``client_authenticating`` endpoints, count failed answers
    instead (:class:`ClientFailures`)."""
    # Fail fast on a bad setting, at start-up rather than on the first request.
    for rule in {rule for _, rule in RULES} | {CLIENT_FAILURES_RULE, FLOWS_RULE}:
        parse_limits(getattr(settings.rate_limits, rule))
    failures = ClientFailures(kv, settings)

    @app.before_request
    def check_rate_limits():
        if request.endpoint in client_authenticating:
            wait = failures.wait(request.remote_addr)
            return too_many_requests(wait) if wait else None
        if not settings.rate_limits.enabled:
            return None
        rules = rules_for(request.endpoint) if request.method == "POST" else []
        if request.endpoint in FLOW_STARTS and "flow" not in request.args:
            rules.append(FLOWS_RULE)
        if not rules:
            return None
        subject = ip_key(request.remote_addr)
        wait = 0
        for rule in rules:
            try:
                hit(kv, settings, rule, subject)
            except RateLimited as exc:
                wait = max(wait, exc.retry_after)
                log.warning("rate limit %s exceeded by %s on %s", rule, subject,
                            request.endpoint)
        return too_many_requests(wait) if wait else None

    @app.after_request
    def count_client_failures(response):
        if request.endpoint in client_authenticating and 400 <= response.status_code < 500 \
                and response.status_code != 429 and not g.get("client_authenticated"):
            try:
                failures.failed(request.remote_addr, request.endpoint)
            except UNAVAILABLE:  # the answer stands; this failure goes uncounted
                log.warning("client failure not counted: the store is unavailable")
        return response

    return failures

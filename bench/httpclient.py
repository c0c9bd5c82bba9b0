"""A small, cheap HTTP/1.1 client for the load generator.

The load generator shares the machine's two cores with the server under test, so every
microsecond it spends is taken from the server's throughput. ``requests`` costs several
times more CPU per request than the standard library's ``http.client``, so this module
wraps ``http.client`` with what the scenarios need and nothing more: a persistent
connection per worker (re-opened when the server closes it, as gunicorn's sync workers
do after every response), a cookie jar with path matching, manual redirects, and an
HTML form parser for the sign-in pages.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import http.client
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from html.parser import HTMLParser


class HttpError(Exception):
    """A request that failed or answered something the scenario did not expect."""


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def json(self) -> dict:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(f"{self.url}: {self.status}, not JSON: {self.body[:200]!r}") from exc

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class CookieJar:
    """Name/value cookies of a single host, with the Path attribute honoured.

    Enough for the sign-in flows of both providers: they set host-only cookies, some
    of them scoped to a path (node oidc-provider's interaction cookies), and delete
    cookies with ``Max-Age=0`` or an expiry date in the past.
    """

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        return len(self._cookies)

    def update_from(self, headers: http.client.HTTPMessage, request_path: str) -> None:
        for raw in headers.get_all("Set-Cookie") or ():
            parts = [p.strip() for p in raw.split(";")]
            if "=" not in parts[0]:
                continue
            name, value = parts[0].split("=", 1)
            default_path = request_path.rsplit("/", 1)[0] or "/"
            path, expired = default_path, False
            for attr in parts[1:]:
                key, _, val = attr.partition("=")
                key = key.strip().lower()
                if key == "path" and val.startswith("/"):
                    path = val
                elif key == "max-age":
                    try:
                        expired = int(val) <= 0
                    except ValueError:
                        pass
                elif key == "expires" and not expired:
                    try:
                        when = email.utils.parsedate_to_datetime(val)
                        expired = when < dt.datetime.now(dt.timezone.utc)
                    except (TypeError, ValueError):
                        pass
            if expired:
                self._cookies.pop((name, path), None)
            else:
                self._cookies[(name, path)] = value

    def header_for(self, path: str) -> str | None:
        pairs = []
        for (name, cookie_path), value in self._cookies.items():
            if path == cookie_path or (path.startswith(cookie_path) and (
                    cookie_path.endswith("/") or path[len(cookie_path)] == "/")):
                pairs.append((len(cookie_path), name, value))
        if not pairs:
            return None
        pairs.sort(key=lambda p: -p[0])  # more specific paths first (RFC 6265 5.4)
        return "; ".join(f"{name}={value}" for _, name, value in pairs)


class Connection:
    """One keep-alive connection to one ``http://host:port`` origin, used by one thread."""

    def __init__(self, origin: str, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(origin)
        if parsed.scheme != "http":
            raise ValueError("only plain http on the loopback is benchmarked")
        self.origin = f"{parsed.scheme}://{parsed.netloc}"
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self.requests = 0
        self.connects = 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.connects += 1
        return self._conn

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                body: bytes | None = None, jar: CookieJar | None = None) -> Response:
        split = urllib.parse.urlsplit(url)
        if split.netloc and f"{split.scheme}://{split.netloc}" != self.origin:
            raise HttpError(f"unexpected origin in {url} (expected {self.origin})")
        target = split.path or "/"
        if split.query:
            target += "?" + split.query
        all_headers = {"Host": f"{self.host}:{self.port}", "Accept-Encoding": "identity"}
        if headers:
            all_headers.update(headers)
        if jar is not None:
            cookie = jar.header_for(split.path or "/")
            if cookie:
                all_headers["Cookie"] = cookie
        if body is not None:
            all_headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            conn = self._connection()
            reused = conn.sock is not None
            try:
                conn.request(method, target, body=body, headers=all_headers)
                raw = conn.getresponse()
                data = raw.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError, http.client.CannotSendRequest) as exc:
                # A keep-alive connection the server closed while idle: retry once on a
                # fresh connection. A fresh connection that fails is a real error.
                self.close()
                if attempt == 1 and reused:
                    continue
                raise HttpError(f"{method} {url}: {exc!r}") from exc
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise HttpError(f"{method} {url}: {exc!r}") from exc
            self.requests += 1
            if raw.will_close:
                self.close()
            if jar is not None:
                jar.update_from(raw.msg, split.path or "/")
            return Response(raw.status, raw.msg, data, self.origin + target)
        raise AssertionError("unreachable")

    def get(self, url: str, **kwargs) -> Response:
        return self.request("GET", url, **kwargs)

    def post_form(self, url: str, fields: dict[str, str] | list[tuple[str, str]], *,
                  headers: dict[str, str] | None = None, jar: CookieJar | None = None
                  ) -> Response:
        all_headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if headers:
            all_headers.update(headers)
        body = urllib.parse.urlencode(fields).encode()
        return self.request("POST", url, headers=all_headers, body=body, jar=jar)


def basic_auth(client_id: str, client_secret: str) -> dict[str, str]:
    """client_secret_basic as RFC 6749 2.3.1 says: form-encode, then base64."""
    user = urllib.parse.quote(client_id, safe="")
    password = urllib.parse.quote(client_secret, safe="")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- HTML forms ---------------------------------------------------------------------


@dataclass
class Form:
    action: str = ""
    method: str = "get"
    inputs: list[dict[str, str]] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)

    def has_input(self, *names: str) -> bool:
        return any(i.get("name") in names for i in self.inputs)

    def has_password(self) -> bool:
        return any(i.get("type", "").lower() == "password" for i in self.inputs)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._button: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._current = Form(action=attributes.get("action", ""),
                                 method=attributes.get("method", "get").lower())
            self.forms.append(self._current)
        elif self._current is None:
            return
        elif tag == "input":
            kind = attributes.get("type", "text").lower()
            if kind in ("submit", "image"):
                self._current.buttons.append({**attributes, "text": attributes.get("value", "")})
            else:
                self._current.inputs.append(attributes)
        elif tag == "button":
            button = {**attributes, "text": ""}
            if attributes.get("type", "submit").lower() == "submit":
                self._current.buttons.append(button)
            self._button = button
        elif tag in ("select", "textarea"):
            self._current.inputs.append({**attributes, "type": tag})

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "button":
            self._button = None


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def form_fields(form: Form, values: dict[str, str],
                button: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The fields a browser would submit: every named input (checkboxes and radios only
    when checked), with ``values`` overriding by name, plus the clicked button."""
    fields: list[tuple[str, str]] = []
    for item in form.inputs:
        name = item.get("name")
        if not name:
            continue
        kind = item.get("type", "text").lower()
        if kind in ("checkbox", "radio") and "checked" not in item and name not in values:
            continue
        fields.append((name, values.get(name, item.get("value", ""))))
    present = {name for name, _ in fields}
    fields.extend((k, v) for k, v in values.items() if k not in present)
    if button is not None and button.get("name"):
        fields.append((button["name"], button.get("value", "")))
    return fields


def now() -> float:
    return time.perf_counter()

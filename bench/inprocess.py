"""The cost of each request of a sign-in, in one process: CPU, SQL statements, store calls.

    .venv/bin/python bench/inprocess.py                  # 100 flows on PostgreSQL + Redis
    .venv/bin/python bench/inprocess.py --profile tottime # and a cProfile of them (CPU time)
    .venv/bin/python bench/inprocess.py --profile cumulative --step 7   # of the refreshes only
    .venv/bin/python bench/inprocess.py --profile tottime --dump /tmp/flow.prof  # raw, for pstats

No HTTP server and no load generator: the provider runs in this process behind Flask's
test client (which sends the browser's cookie everywhere), against a fresh PostgreSQL
database ``idp_inprocess`` and Redis database 12. Each flow is authorize -> login page ->
login -> token -> userinfo, then a refresh, an introspection and a ``client_credentials``
grant (the authorization request answers with the login page, and the login answers the
authorization request itself; an older version, or the floor, has a separate step 2 for
the login page and step 4 for the authorize/resume). The
CPU is this process's (``time.process_time``): the provider's Python, psycopg and
redis-py, and the test client's own share, about three quarters of a cheap step such as
``client_credentials``. Compare these figures with each other, not with the full stack's:
two versions of the code, step by step, by alternating runs on a noisy machine. The
counts are exact.
"""

from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import cProfile
import hashlib
import os
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from httpclient import form_fields, parse_forms  # noqa: E402
from servers import (ensure_postgres, ensure_redis, flush_redis, recreate_database,  # noqa: E402
                     signin_floor_env)
from servers import REDIRECT_URI as FLOOR_REDIRECT_URI  # noqa: E402

REDIRECT_URI = "https://demarche.example.org/callback"
FLOOR_CLIENT = ("floor-web", "floor-secret")
EMAIL, PASSWORD = "inprocess@bench.invalid", "inprocess-password-" + "x" * 12
STORE_METHODS = ("get", "get_many", "set", "set_if_absent", "delete", "write", "incr",
                 "incr_and_get", "begin_attempt", "ttl", "expire")


def make_app(workdir: Path):
    database_url = recreate_database("idp_inprocess")
    flush_redis(12)
    os.environ.update({
        "IDP_ISSUER": "http://localhost", "IDP_DATABASE_URL": database_url,
        "IDP_REDIS_URL": "redis://127.0.0.1:6379/12",
        "IDP_SECRET_KEY": "inprocess-secret-" + "0" * 32,
        "IDP_KEYS_DIR": str(workdir / "keys"), "IDP_INSTANCE_DIR": str(workdir / "instance"),
        "IDP_MESSAGING__OUTBOX_DIR": str(workdir / "outbox"), "IDP_AUTO_MIGRATE": "false",
    })
    # Every per-address limit out of reach, whatever this version of the provider calls them.
    from idp.config import RateLimitSettings
    os.environ.update({f"IDP_RATE_LIMITS__{f.name.upper()}": "100000000/minute"
                       for f in dataclasses.fields(RateLimitSettings) if f.name.endswith("_per_ip")})
    from idp import create_app
    from idp.admin.clients import create_client
    from idp.identity.users import create_user
    from idp.persistence.migrate import upgrade

    app = create_app()
    svc = app.extensions["idp"]
    upgrade(svc.db)
    with app.app_context():
        session = svc.db.session
        client, secret = create_client(
            session, name="inprocess", redirect_uris=[REDIRECT_URI], require_consent=False,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            scopes=["openid", "profile", "email", "offline_access"])
        create_user(session, svc.passwords, email=EMAIL, password=PASSWORD,
                    email_verified=True, terms_version=svc.settings.registration.terms_version)
        session.commit()
        client_id = client.client_id
    return app, client_id, secret


class Meter:
    """CPU, SQL statements and store calls, per step."""

    def __init__(self, app, profiler: cProfile.Profile | None = None,
                 profiled_step: str | None = None) -> None:
        from sqlalchemy import event

        svc = app.extensions["idp"]
        self.step = "-"
        self.profiler, self.profiled_step = profiler, profiled_step
        self.cpu: dict[str, float] = collections.defaultdict(float)
        self.statements: dict[str, int] = collections.defaultdict(int)
        self.store_calls: dict[str, int] = collections.defaultdict(int)
        self.trace: list[tuple[str, str, str]] | None = None
        # Under callgrind (--instructions): each step's instructions, dumped under
        # ``label + step`` by bench/callgrind_marks.c; None otherwise.
        self.callgrind = None
        self.label = ""
        event.listen(svc.db.engine, "before_cursor_execute", self._statement)
        for name in STORE_METHODS:
            original = getattr(svc.kv, name)

            def counting(*args, _original=original, _name=name, **kwargs):
                self.store_calls[self.step] += 1
                if self.trace is not None:
                    key = str(args[0]) if args else ""
                    self.trace.append((self.step, "store", f"{_name} {key.split(':')[0]}:…"))
                return _original(*args, **kwargs)
            setattr(svc.kv, name, counting)

    def _statement(self, _conn, _cursor, statement: str, *_args) -> None:
        self.statements[self.step] += 1
        if self.trace is not None:
            self.trace.append((self.step, "SQL", " ".join(statement.split())[:110]))

    def run(self, step: str, call):
        self.step = step
        profiling = self.profiler is not None and (
            self.profiled_step is None or step.startswith(self.profiled_step))
        started = time.process_time()
        if profiling:
            self.profiler.enable()
        if self.callgrind is not None:
            self.callgrind.cg_toggle()
        try:
            return call()
        finally:
            if self.callgrind is not None:
                self.callgrind.cg_toggle()
                self.callgrind.cg_dump(f"{self.label}{step}".encode())
            if profiling:
                self.profiler.disable()
            self.cpu[step] += time.process_time() - started
            self.step = "-"

    def reset(self) -> None:
        self.cpu.clear()
        self.statements.clear()
        self.store_calls.clear()


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def one_flow(app, client_id: str, secret: str, meter: Meter) -> None:
    browser = app.test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(
        f"{client_id}:{secret}".encode()).decode()}
    verifier, challenge = pkce_pair()
    query = urlencode({"response_type": "code", "client_id": client_id,
                       "redirect_uri": REDIRECT_URI, "state": "s", "nonce": "n",
                       "scope": "openid profile email offline_access",
                       "code_challenge": challenge, "code_challenge_method": "S256"})

    def expect(response, status: int):
        if response.status_code != status:
            raise SystemExit(f"{meter.step}: HTTP {response.status_code}, expected {status}")
        return response

    response = meter.run("1 authorize", lambda: browser.get("/authorize?" + query))
    if response.status_code == 200:
        page = response  # ours answers with the login page (idp/flows/login.py)
    else:
        expect(response, 302)
        page = expect(meter.run("2 login page",
                                lambda: browser.get(response.headers["Location"])), 200)
    form = next(f for f in parse_forms(page.get_data(as_text=True)) if f.has_input("password"))
    fields = dict(form_fields(form, {"email": EMAIL, "password": PASSWORD}))
    response = expect(meter.run("3 login", lambda: browser.post(
        form.action or response.headers["Location"], data=fields)), 302)
    location = response.headers["Location"]
    if not location.startswith(REDIRECT_URI):
        response = expect(meter.run("4 authorize/resume", lambda: browser.get(location)), 302)
        location = response.headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = expect(meter.run("5 token (code)", lambda: browser.post("/token", headers=auth, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier})), 200).get_json()
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    expect(meter.run("6 userinfo", lambda: browser.get("/userinfo", headers=bearer)), 200)
    expect(meter.run("7 token (refresh)", lambda: browser.post("/token", headers=auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})), 200)
    expect(meter.run("8 introspection", lambda: browser.post(
        "/introspect", headers=auth, data={"token": tokens["access_token"]})), 200)
    expect(meter.run("9 client_credentials", lambda: browser.post(
        "/token", headers=auth, data={"grant_type": "client_credentials"})), 200)


def make_floor_app(workdir: Path, database_url: str):
    """bench/signin_floor/app.py in this process, on the same database (its ``users``
    table holds the account of ``make_app``)."""
    import importlib.util

    from scenarios import Client

    os.environ.update(signin_floor_env(workdir, database_url, "http://localhost",
                                       Client(*FLOOR_CLIENT)))
    spec = importlib.util.spec_from_file_location("signin_floor_app",
                                                  BENCH / "signin_floor" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def floor_flow(module, meter: "Meter") -> None:
    """The sign-in steps 1-6 against bench/signin_floor (no password hash)."""
    browser = module.app.test_client()
    verifier, challenge = pkce_pair()
    query = urlencode({"response_type": "code", "client_id": FLOOR_CLIENT[0],
                       "redirect_uri": FLOOR_REDIRECT_URI, "state": "s", "nonce": "n",
                       "scope": "openid profile email", "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    location = meter.run("1 authorize", lambda: browser.get("/authorize?" + query)
                         ).headers["Location"]
    page = meter.run("2 login page", lambda: browser.get(location))
    form = next(f for f in parse_forms(page.get_data(as_text=True)) if f.has_input("password"))
    fields = dict(form_fields(form, {"email": EMAIL, "password": PASSWORD}))
    location = meter.run("3 login", lambda: browser.post(form.action, data=fields)
                         ).headers["Location"]
    location = meter.run("4 authorize/resume", lambda: browser.get(location)).headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    auth = {"Authorization": "Basic " + base64.b64encode(":".join(FLOOR_CLIENT).encode()).decode()}
    tokens = meter.run("5 token (code)", lambda: browser.post("/token", headers=auth, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": FLOOR_REDIRECT_URI,
        "code_verifier": verifier})).get_json()
    response = meter.run("6 userinfo", lambda: browser.get(
        "/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}))
    if response.status_code != 200:
        raise SystemExit(f"floor userinfo: HTTP {response.status_code}")


CALLGRIND_MARKS_ENV = "BENCH_CALLGRIND_MARKS"


def _callgrind_marks():
    """bench/callgrind_marks.c, loaded when this process runs under callgrind for
    --instructions; None otherwise."""
    path = os.environ.get(CALLGRIND_MARKS_ENV)
    if not path:
        return None
    import ctypes
    return ctypes.CDLL(path)


def count_instructions(argv: list[str], args) -> int:
    """Run this script again under callgrind, collecting only inside the measured steps,
    each dumped under its name; print the instructions per flow of each step."""
    import re
    import shutil
    import subprocess

    for tool, package in (("valgrind", "valgrind"), ("cc", "gcc")):
        if shutil.which(tool) is None:
            raise SystemExit(f"--instructions needs {tool} (Debian package {package})")
    with tempfile.TemporaryDirectory(prefix="idp-callgrind-") as tmp:
        library = Path(tmp) / "callgrind_marks.so"
        subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(library),
                        str(BENCH / "callgrind_marks.c")], check=True)
        env = {**os.environ, CALLGRIND_MARKS_ENV: str(library), "PYTHONHASHSEED": "0"}
        env.setdefault("IDP_PASSWORDS__ARGON2_MEMORY_KIB", "8")
        env.setdefault("IDP_PASSWORDS__ARGON2_TIME_COST", "1")
        child = subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no",
             f"--callgrind-out-file={tmp}/cg.out", sys.executable, __file__, *argv],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if child.returncode != 0:
            sys.stderr.write(child.stdout[-3000:] + child.stderr[-3000:])
            return child.returncode
        counts: dict[str, int] = collections.defaultdict(int)
        for dump in Path(tmp).glob("cg.out.*"):
            text = dump.read_text(errors="replace")
            name = re.search(r"^desc: Trigger: Client Request: (.*)$", text, re.M)
            total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            if name and total:
                counts[name.group(1)] += int(total.group(1))
    n = args.flows
    print(f"Instructions per flow, millions (callgrind, {n} flows after {args.warmup}; "
          f"argon2id memory {env['IDP_PASSWORDS__ARGON2_MEMORY_KIB']} KiB)")
    sides = ["ours"] + (["floor"] if args.floor else [])
    print(f"{'step':22s}" + "".join(f"{side:>10s}" for side in sides))
    steps = sorted({key.split(":", 1)[1] for key in counts})
    for step in steps:
        print(f"{step:22s}" + "".join(
            f"{counts.get(f'{side}:{step}', 0) / n / 1e6:10.2f}" for side in sides))
    print(f"{'sign-in (steps 1-6)':22s}" + "".join(
        f"{sum(counts.get(f'{side}:{s}', 0) for s in steps if s[0] in '123456') / n / 1e6:10.2f}"
        for side in sides))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100, help="measured flows (default 100)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured flows first")
    parser.add_argument("--profile", metavar="SORT",
                        help="print a cProfile of the measured flows, sorted by SORT "
                             "(cumulative, tottime...); CPU time, not wall time")
    parser.add_argument("--lines", type=int, default=50, help="profile lines shown (50)")
    parser.add_argument("--step", metavar="N",
                        help="profile only the steps whose label starts with N (e.g. 5)")
    parser.add_argument("--trace", action="store_true",
                        help="also list each SQL statement and store call of one flow, by step")
    parser.add_argument("--floor", action="store_true",
                        help="also time steps 1-6 against bench/signin_floor (the stack's "
                             "floor: no provider layer, no password hash)")
    parser.add_argument("--instructions", action="store_true",
                        help="count each step's machine instructions under valgrind's "
                             "callgrind instead of timing it: repeatable to about 0.1 %% "
                             "on a noisy machine, about 50 times slower (try --flows 10); "
                             "accounts get a negligible argon2id hash unless "
                             "IDP_PASSWORDS__ARGON2_* say otherwise")
    parser.add_argument("--dump", metavar="FILE",
                        help="also write the raw profile to FILE (for pstats or snakeviz)")
    args = parser.parse_args(argv)
    if args.dump and not args.profile:
        parser.error("--dump needs --profile")
    if args.instructions and not os.environ.get(CALLGRIND_MARKS_ENV):
        return count_instructions(argv if argv is not None else sys.argv[1:], args)
    ensure_postgres()
    ensure_redis()
    with tempfile.TemporaryDirectory(prefix="idp-inprocess-") as tmp:
        app, client_id, secret = make_app(Path(tmp))
        meter = Meter(app)
        for _ in range(args.warmup):
            one_flow(app, client_id, secret, meter)
        meter.reset()
        marks = _callgrind_marks()
        meter.callgrind, meter.label = marks, "ours:"
        # CPU time, so that waiting on PostgreSQL or Redis does not show as a hot spot.
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        meter.profiler, meter.profiled_step = profiler, args.step
        for _ in range(args.flows):
            one_flow(app, client_id, secret, meter)
        meter.callgrind = None
        n = args.flows
        print(f"{'step':22s} {'CPU ms':>8s} {'SQL':>5s} {'store':>6s}")
        for step in sorted(meter.cpu):
            print(f"{step:22s} {meter.cpu[step] * 1000 / n:8.2f} "
                  f"{meter.statements[step] / n:5.1f} {meter.store_calls[step] / n:6.1f}")
        flow = [s for s in meter.cpu if s[0] in "123456"]
        print(f"{'sign-in (steps 1-6)':22s} {sum(meter.cpu[s] for s in flow) * 1000 / n:8.2f} "
              f"{sum(meter.statements[s] for s in flow) / n:5.1f} "
              f"{sum(meter.store_calls[s] for s in flow) / n:6.1f}")
        print("(CPU includes one argon2id verification in step 3; profiled runs cost more)"
              if profiler is None else "")
        if profiler:
            pstats.Stats(profiler).sort_stats(args.profile).print_stats(args.lines)
            if args.dump:
                profiler.dump_stats(args.dump)
        if args.floor:
            floor = make_floor_app(Path(tmp), app.extensions["idp"].settings.database_url)
            floor_meter = Meter(app)
            for _ in range(args.warmup):
                floor_flow(floor, floor_meter)
            floor_meter.reset()
            floor_meter.callgrind, floor_meter.label = marks, "floor:"
            for _ in range(args.flows):
                floor_flow(floor, floor_meter)
            floor_meter.callgrind = None
            print(f"\n{'floor step':22s} {'CPU ms':>8s}   ours/floor")
            for step in sorted(floor_meter.cpu):
                ours = meter.cpu.get(step)
                # Ours answers with the login page at step 1 (idp/flows/login.py) and the
                # resume within the login (idp/flows/continuation.py).
                ratio = (f"{ours / floor_meter.cpu[step]:5.1f}×" if ours else
                         f"    –  (ours: within step {1 if step.startswith('2') else 3})")
                print(f"{step:22s} {floor_meter.cpu[step] * 1000 / n:8.2f}   {ratio}")
            print(f"{'sign-in (steps 1-6)':22s} {sum(floor_meter.cpu.values()) * 1000 / n:8.2f}"
                  "   (no password hash; ours has one in step 3)")
            floor.engine.dispose()
        if args.trace:
            meter.trace = []
            one_flow(app, client_id, secret, meter)
            for step, kind, what in meter.trace:
                print(f"{step:22s} {kind:5s} {what}")
        app.extensions["idp"].db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

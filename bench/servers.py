"""Starting, preparing and stopping what the suite measures.

- the backing services (PostgreSQL, Redis), started only if they are not running;
- our provider under gunicorn, on a dedicated database and Redis database number;
- the reference, node ``oidc-provider`` (bench/reference), installed with ``npm ci``.

Every subprocess is bounded in time, and every server started here is stopped by its
own pid (process group) when the suite ends, however it ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import hash_meter
import procstat
from httpclient import Connection, HttpError
from scenarios import Client, Target

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
REFERENCE = BENCH / "reference"
GUNICORN_CONF = ROOT / "gunicorn.conf.py"   # what production runs: the suite uses it too

REDIRECT_URI = "http://127.0.0.1:9/callback"   # never contacted: the flow stops there
BENCH_EMAIL = "bench-user@example.org"
BENCH_PASSWORD = "Bench-password-2026!x"        # satisfies the provider's password policy
SERVICE_SCOPE_NODE = "api"


class SuiteError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: list[str], *, env: dict | None = None, timeout: float = 120,
        cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command to completion, bounded in time; raise with its output on failure."""
    try:
        proc = subprocess.run(cmd, env=env, cwd=cwd, timeout=timeout, text=True,
                              capture_output=True, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise SuiteError(f"timed out after {timeout}s: {' '.join(cmd)}") from exc
    except FileNotFoundError as exc:
        raise SuiteError(f"not found: {cmd[0]}") from exc
    if check and proc.returncode != 0:
        raise SuiteError(f"exit {proc.returncode}: {' '.join(cmd)}\n"
                         f"{(proc.stdout or '')[-2000:]}\n{(proc.stderr or '')[-3000:]}")
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def venv_bin(name: str) -> str:
    """An executable of the running interpreter's environment (the project's venv)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise SuiteError(f"{name} not found next to {sys.executable} nor on PATH "
                         "(pip install -e . in the project's venv)")
    return found


# -- backing services ----------------------------------------------------------------------


def ensure_postgres(timeout: float = 60) -> None:
    if port_open("127.0.0.1", 5432):
        return
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
    if not versions:
        raise SuiteError("PostgreSQL is not running on 127.0.0.1:5432 and is not installed")
    log(f"starting PostgreSQL {versions[-1]}")
    run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        timeout=timeout)
    _wait(lambda: port_open("127.0.0.1", 5432), timeout, "PostgreSQL")


def ensure_redis(timeout: float = 30) -> None:
    if port_open("127.0.0.1", 6379):
        return
    log("starting Redis")
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
         "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
         "--logfile", "/var/log/redis/ci.log"], timeout=timeout)
    _wait(lambda: port_open("127.0.0.1", 6379), timeout, "Redis")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SuiteError(f"{what} not ready within {timeout}s")


def admin_postgres_url() -> str:
    """A superuser connection to the maintenance database (trust auth on the loopback)."""
    import psycopg
    for user in ("postgres", "root"):
        for database in ("postgres", "test"):
            url = f"postgresql://{user}@127.0.0.1:5432/{database}"
            try:
                psycopg.connect(url, connect_timeout=5).close()
                return url
            except psycopg.Error:
                continue
    raise SuiteError("cannot connect to PostgreSQL on 127.0.0.1:5432 as postgres or root")


def recreate_database(name: str) -> str:
    """Drop and create database ``name``; return its URL."""
    import psycopg
    admin = admin_postgres_url()
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(admin)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def flush_redis(db: int) -> None:
    import redis
    redis.Redis(host="127.0.0.1", port=6379, db=db, socket_timeout=5).flushdb()


class BackingCpu:
    """CPU of PostgreSQL (our database's backends plus the cluster's background
    processes, not other databases' backends) and of Redis, sampled per pid."""

    def __init__(self, database: str | None, redis: bool) -> None:
        self.database = database
        self.redis = redis

    def _pids(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {"postgresql": [], "redis": []}
        stats = procstat.all_stats()
        for stat in stats.values():
            if self.redis and stat.comm.startswith("redis-server"):
                groups["redis"].append(stat.pid)
            elif self.database and stat.comm.startswith("postgres"):
                parent = stats.get(stat.ppid)
                if parent is None or not parent.comm.startswith("postgres"):
                    continue  # the postmaster: its cutime mixes every database's backends
                try:
                    title = Path(f"/proc/{stat.pid}/cmdline").read_bytes().decode(
                        "utf-8", "replace")
                except OSError:
                    continue
                # Backends are titled "postgres: 15/main: USER DATABASE HOST(PORT) STATE";
                # background processes carry no database name.
                words = title.replace("\0", " ").split()
                is_backend = len(words) >= 5 and "(" in words[4]
                if not is_backend or words[3] == self.database:
                    groups["postgresql"].append(stat.pid)
        return groups

    def sample(self) -> dict[str, dict[int, int]]:
        result = {}
        for group, pids in self._pids().items():
            ticks = {}
            for pid in pids:
                stat = procstat.read_stat(pid)
                if stat is not None:
                    ticks[pid] = stat.utime + stat.stime
            result[group] = ticks
        return result

    @staticmethod
    def delta(before: dict[str, dict[int, int]], after: dict[str, dict[int, int]]
              ) -> dict[str, float]:
        """CPU seconds per group between two samples (a backend that exited in between
        loses its last ticks: the application's connection pool keeps them alive)."""
        out = {}
        for group, ticks in after.items():
            old = before.get(group, {})
            out[group] = sum(t - old.get(pid, 0) for pid, t in ticks.items()) / procstat.CLK_TCK
        return out


class StorageCounters:
    """Work asked of the storage: PostgreSQL transactions and row writes of our database
    (pg_stat_database, flushed by the backends within about a second, so approximate
    over a short window) and Redis commands (the whole server's count)."""

    def __init__(self, database: str | None, redis_db: int | None) -> None:
        self.database = database
        self.redis_db = redis_db
        self._admin = admin_postgres_url() if database else None

    def sample(self) -> dict[str, int]:
        counters: dict[str, int] = {}
        if self.database:
            import psycopg
            with psycopg.connect(self._admin, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute(
                    "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + "
                    "tup_deleted FROM pg_stat_database WHERE datname = %s",
                    (self.database,)).fetchone()
            if row:
                counters["pg_transactions"], counters["pg_row_writes"] = row
        if self.redis_db is not None:
            import redis
            info = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5).info("stats")
            counters["redis_commands"] = info["total_commands_processed"]
        return counters


# -- managed servers -------------------------------------------------------------------------


@dataclass
class Managed:
    """A server process started by the suite in its own process group."""

    name: str
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self, cmd: list[str], *, env: dict, cwd: Path, log_path: Path) -> None:
        self.log_path = log_path
        handle = log_path.open("ab")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=handle,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        handle.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def wait_http(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        parsed = urllib.parse.urlsplit(url)
        last = ""
        while time.monotonic() < deadline:
            if not self.alive():
                raise SuiteError(f"{self.name} exited with {self.proc.returncode}:\n"
                                 f"{self.log_tail()}")
            conn = Connection(f"{parsed.scheme}://{parsed.netloc}", timeout=2)
            try:
                resp = conn.get(url)
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
            except HttpError as exc:
                last = str(exc)
            finally:
                conn.close()
            time.sleep(0.2)
        raise SuiteError(f"{self.name} not answering {url} within {timeout}s ({last}):\n"
                         f"{self.log_tail()}")

    def stop(self, timeout: float = 10) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass

    def cpu_seconds(self) -> float:
        return procstat.tree_cpu_seconds([self.pid])

    def worker_pids(self) -> list[int]:
        """gunicorn's workers (node has none: it is one process)."""
        return procstat.descendants(self.pid)

    def memory(self) -> list[dict]:
        return procstat.tree_memory(self.pid)


# -- the node reference ------------------------------------------------------------------------


def npm_install(timeout: float = 240) -> str:
    """``npm ci`` in bench/reference unless node_modules already matches the lock file."""
    lock = json.loads((REFERENCE / "package-lock.json").read_text())
    wanted = lock["packages"]["node_modules/oidc-provider"]["version"]
    installed = REFERENCE / "node_modules" / "oidc-provider" / "package.json"
    marker = REFERENCE / "node_modules" / ".package-lock.json"
    if installed.exists() and marker.exists():
        have = json.loads(installed.read_text()).get("version")
        if have == wanted:
            return wanted
    npm = shutil.which("npm")
    if npm is None:
        raise SuiteError("npm not found: install Node.js 20+ and npm")
    log(f"npm ci in {REFERENCE.relative_to(ROOT)} (oidc-provider {wanted})")
    run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REFERENCE,
        timeout=timeout)
    return wanted


def start_reference(workdir: Path, secret: str, timeout: float = 30) -> tuple[Managed, Target]:
    version = npm_install()
    node = shutil.which("node")
    if node is None:
        raise SuiteError("node not found")
    port = free_port()
    env = {**os.environ, "PORT": str(port), "BENCH_REDIRECT": REDIRECT_URI,
           "BENCH_SECRET": secret, "NODE_ENV": "production"}
    server = Managed("node oidc-provider")
    server.start([node, "server.js"], env=env, cwd=REFERENCE,
                 log_path=workdir / "node-reference.log")
    issuer = f"http://127.0.0.1:{port}"
    server.wait_http(issuer + "/.well-known/openid-configuration", timeout)
    node_version = run([node, "--version"], timeout=10).stdout.strip()
    target = Target(
        name="node", issuer=issuer,
        web=Client("bench-web", secret), service=Client("bench-service", secret,
                                                         SERVICE_SCOPE_NODE),
        redirect_uri=REDIRECT_URI, email=BENCH_EMAIL, password=BENCH_PASSWORD,
        version=f"oidc-provider {version} on node {node_version}")
    target.load_metadata()
    return server, target


# -- our provider ------------------------------------------------------------------------------


@dataclass
class OurProvider:
    workdir: Path
    sqlite: bool = False
    workers: int = 2
    database: str = "idp_bench"
    redis_db: int = 13
    port: int = field(default_factory=free_port)
    database_url: str = ""
    server: Managed = field(default_factory=lambda: Managed("compte-usager (gunicorn)"))
    # Settings of this provider only (e.g. the argon2 parameters), over everything else.
    extra_env: dict[str, str] = field(default_factory=dict)
    # gunicorn's settings file (bench/worker_cpu.py adds profiling hooks to the default).
    gunicorn_conf: Path = GUNICORN_CONF
    # Where the workers count their password verifications' CPU (bench/hash_meter.py).
    hash_meter_dir: Path | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        instance = self.workdir / "instance"
        keys = self.workdir / "keys"
        instance.mkdir(exist_ok=True)
        keys.mkdir(exist_ok=True)
        env.update({
            "IDP_ISSUER": self.issuer,
            "IDP_DATABASE_URL": self.database_url,
            "IDP_SECRET_KEY": "bench-secret-key-" + "0" * 40,
            "IDP_KEYS_DIR": str(keys),
            "IDP_INSTANCE_DIR": str(instance),
            "IDP_MESSAGING__OUTBOX_DIR": str(instance / "outbox"),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(_unreachable_ip_limits())
        if not self.sqlite:
            env["IDP_REDIS_URL"] = f"redis://127.0.0.1:6379/{self.redis_db}"
        # An explicit IDP_CONFIG given to the suite is passed on (e.g. other argon2
        # parameters); otherwise the provider reads config/idp.toml when it exists.
        if "IDP_CONFIG" in os.environ:
            env["IDP_CONFIG"] = os.environ["IDP_CONFIG"]
        if self.hash_meter_dir is not None:
            env.update(hash_meter.environment(self.hash_meter_dir))
        env.update(self.extra_env)
        return env

    def idp(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return run([venv_bin("idp"), *args], env=self.env(), cwd=ROOT, timeout=timeout)

    def prepare(self) -> None:
        """A fresh database and Redis db, migrated, with the bench clients and user."""
        if self.sqlite:
            path = self.workdir / "instance" / "bench.sqlite3"
            (self.workdir / "instance").mkdir(exist_ok=True)
            path.unlink(missing_ok=True)
            self.database_url = f"sqlite:///{path}"
        else:
            self.database_url = recreate_database(self.database)
            flush_redis(self.redis_db)
        self.idp("db", "upgrade")

    def create_clients(self) -> tuple[Client, Client]:
        web = self._create_client(
            "bench-web", "--auth-method", "client_secret_basic",
            "--grant-type", "authorization_code", "--grant-type", "refresh_token",
            "--scope", "openid", "--scope", "profile", "--scope", "email",
            "--scope", "offline_access", "--no-consent")
        service = self._create_client(
            "bench-service", "--auth-method", "client_secret_basic",
            "--grant-type", "client_credentials")
        return web, service

    def _create_client(self, name: str, *options: str) -> Client:
        proc = self.idp("clients", "create", "--name", name, "--redirect-uri", REDIRECT_URI,
                        *options, "--json")
        try:
            data = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError as exc:
            raise SuiteError(f"idp clients create printed no JSON: {proc.stdout!r}") from exc
        return Client(data["client_id"], data.get("client_secret") or "")

    def create_user(self) -> None:
        self.idp("users", "create", "--email", BENCH_EMAIL, "--password", BENCH_PASSWORD,
                 "--given-name", "Bench", "--family-name", "User")

    def start(self, timeout: float = 60) -> None:
        # The production settings (gunicorn.conf.py: gthread workers with keep-alive),
        # with the suite's worker count and port.
        cmd = [venv_bin("gunicorn"), "-c", str(self.gunicorn_conf), "-w", str(self.workers),
               "-b", f"127.0.0.1:{self.port}", "--error-logfile", "-", "idp.wsgi:app"]
        self.server.start(cmd, env=self.env(), cwd=ROOT, log_path=self.workdir / "gunicorn.log")
        self.server.wait_http(self.issuer + "/.well-known/openid-configuration", timeout)
        # Wait for every worker: the first answer may come before all have booted.
        deadline = time.monotonic() + timeout
        while len(procstat.descendants(self.server.pid)) < self.workers:
            if time.monotonic() > deadline:
                raise SuiteError("gunicorn workers did not all start")
            time.sleep(0.2)

    def target(self, web: Client, service: Client) -> Target:
        target = Target(name="ours", issuer=self.issuer, web=web, service=service,
                        redirect_uri=REDIRECT_URI, email=BENCH_EMAIL, password=BENCH_PASSWORD,
                        version=_our_version(),
                        # Ours issues a refresh token only for offline_access (node's
                        # reference is configured to issue one with every code).
                        signin_scope="openid profile email offline_access")
        target.load_metadata()
        return target


def start_floor(provider: OurProvider, timeout: float = 30) -> tuple[Managed, Target]:
    """gunicorn, with the provider's worker count, serving a copy of its discovery
    document from bench/floor_app.py."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    conn = Connection(provider.issuer)
    try:
        document = conn.get(provider.issuer + "/.well-known/openid-configuration").body
    finally:
        conn.close()
    path = provider.workdir / "floor-document.json"
    path.write_bytes(document.replace(provider.issuer.encode(), issuer.encode()))
    env = {**os.environ, "BENCH_FLOOR_DOCUMENT": str(path)}
    server = Managed("gunicorn floor")
    server.start([venv_bin("gunicorn"), "-c", str(GUNICORN_CONF), "-w", str(provider.workers),
                  "-b", f"127.0.0.1:{port}", "--chdir", str(BENCH), "floor_app:app"],
                 env=env, cwd=BENCH, log_path=provider.workdir / "floor.log")
    server.wait_http(issuer + "/.well-known/openid-configuration", timeout)
    none = Client("", "")
    target = Target(name="floor", issuer=issuer, web=none, service=none,
                    redirect_uri=REDIRECT_URI, email="", password="",
                    version="gunicorn serving a static copy of the discovery document")
    target.load_metadata()
    return server, target


SIGNIN_FLOOR = BENCH / "signin_floor"
SIGNIN_FLOOR_REDIS_DB = 15
# The floor that checks the password: its own Redis database and table.
SIGNIN_FLOOR_HASH_REDIS_DB = 10


def signin_floor_env(workdir: Path, database_url: str, issuer: str, client: Client,
                     redis_db: int = SIGNIN_FLOOR_REDIS_DB, table: str = "bench_floor_tokens"
                     ) -> dict[str, str]:
    """Prepare bench/signin_floor/app.py's state (its keys, its table in the provider's
    database, an empty Redis database) and return the environment it reads."""
    import psycopg
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    keys = workdir / f"signin-floor-keys-{table}"
    keys.mkdir(exist_ok=True)
    for name, key in (("rsa", rsa.generate_private_key(65537, 2048)),
                      ("ec", ec.generate_private_key(ec.SECP256R1()))):
        (keys / f"{name}.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (lookup text PRIMARY KEY, kind text NOT "
                     "NULL, user_id text NOT NULL, data jsonb NOT NULL, expires_at timestamptz "
                     "NOT NULL, consumed_at timestamptz)")
    flush_redis(redis_db)
    return {"BENCH_FLOOR_ISSUER": issuer, "BENCH_FLOOR_CLIENT_ID": client.client_id,
            "BENCH_FLOOR_CLIENT_SECRET": client.client_secret,
            "BENCH_FLOOR_REDIRECT_URI": REDIRECT_URI, "BENCH_FLOOR_SECRET": os.urandom(16).hex(),
            "BENCH_FLOOR_KEYS": str(keys), "BENCH_FLOOR_TABLE": table,
            "BENCH_FLOOR_DATABASE_URL": database_url.replace("postgresql://",
                                                             "postgresql+psycopg://", 1),
            "BENCH_FLOOR_REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}"}


def start_signin_floor(provider: OurProvider, timeout: float = 30, *,
                       verify_password: bool = False, meter: Path | None = None
                       ) -> tuple[Managed, Target]:
    """gunicorn, with the provider's worker count, serving bench/signin_floor/app.py: the
    least a sign-in can cost on this stack, against the provider's own database (its
    ``users`` table: the same seeded accounts) and a Redis database of its own. With
    ``verify_password``, the floor checks each password against the account's argon2id
    hash (target ``floor-hash``, its own table and Redis database). With ``meter``, its
    workers count their verifications' CPU there (bench/hash_meter.py)."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    client = Client("floor-web", "floor-" + os.urandom(12).hex())
    name = "floor-hash" if verify_password else "floor"
    state = signin_floor_env(
        provider.workdir, provider.database_url, issuer, client,
        **({"redis_db": SIGNIN_FLOOR_HASH_REDIS_DB, "table": "bench_floor_hash_tokens"}
           if verify_password else {}))
    env = {**os.environ, **state, "BENCH_FLOOR_VERIFY_PASSWORD": "1" if verify_password else "0",
           **(hash_meter.environment(meter) if meter is not None else {})}
    server = Managed(f"gunicorn sign-in {name}")
    server.start([venv_bin("gunicorn"), "-c", str(GUNICORN_CONF), "-w", str(provider.workers),
                  "-b", f"127.0.0.1:{port}", "--chdir", str(SIGNIN_FLOOR), "app:app"],
                 env=env, cwd=SIGNIN_FLOOR, log_path=provider.workdir / f"signin-{name}.log")
    server.wait_http(issuer + "/.well-known/openid-configuration", timeout)
    target = Target(name=name, issuer=issuer, web=client, service=Client("", ""),
                    redirect_uri=REDIRECT_URI, email="", password="",
                    version="bench/signin_floor: Flask, SQLAlchemy Core, redis-py, no "
                            "provider layer" + (", argon2id verification" if verify_password
                                                else ""))
    target.load_metadata()
    return server, target


def _unreachable_ip_limits() -> dict[str, str]:
    """All the load comes from one address: keep the per-address rate limiter on (its
    cost is part of each request) with limits no benchmark reaches."""
    try:
        import dataclasses
        sys.path.insert(0, str(ROOT))
        from idp.config import RateLimitSettings
        names = [f.name for f in dataclasses.fields(RateLimitSettings)
                 if f.name.endswith("_per_ip")]
    except Exception:  # noqa: BLE001 - the suite must not depend on the provider's internals
        names = ["login_per_ip", "code_verify_per_ip", "client_failures_per_ip"]
    return {f"IDP_RATE_LIMITS__{name.upper()}": "100000000/minute" for name in names}


def _our_version() -> str:
    try:
        rev = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], timeout=10,
                  check=False).stdout.strip()
    except SuiteError:
        rev = ""
    return f"compte-usager {rev or '(no commit)'}"

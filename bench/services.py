"""What the benchmark starts and measures: PostgreSQL and Redis, the provider under
``idp serve``, node ``oidc-provider``, seeded accounts, and the CPU of each process.

Every server is started in its own process group and stopped by its pid.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "bench" / "reference"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: the flow stops there
PASSWORD = "Bench-password-2026!x"  # satisfies the provider's password policy
EMAIL_DOMAIN = "bench.invalid"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# The benchmark's own database (the test suite uses `test`): a schema per provider.
BENCH_DATABASE = "idp_bench"
BENCH_URL = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DATABASE}"
# The benchmark's own Redis database: the test suite uses 15 (scripts/test).
REDIS_DB = 14
CLK_TCK = os.sysconf("SC_CLK_TCK")


class SuiteError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: list[str], *, env: dict | None = None, cwd: Path = ROOT,
        timeout: float = 120) -> str:
    """Run a command to completion, bounded in time; its output, or SuiteError."""
    try:
        proc = subprocess.run(cmd, env=env, cwd=cwd, timeout=timeout, text=True,
                              capture_output=True, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise SuiteError(f"timed out after {timeout}s: {' '.join(cmd)}") from exc
    except FileNotFoundError as exc:
        raise SuiteError(f"not found: {cmd[0]}") from exc
    if proc.returncode != 0:
        raise SuiteError(f"exit {proc.returncode}: {' '.join(cmd)}\n{proc.stdout[-2000:]}"
                         f"\n{proc.stderr[-3000:]}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SuiteError(f"{what} not ready within {timeout:.0f}s")
        time.sleep(0.2)


# -- PostgreSQL and Redis ----------------------------------------------------------------


def ensure_services() -> None:
    """Start PostgreSQL and Redis as scripts/services.sh does, if they are not running."""
    if not port_open(5432):
        versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: float(v)) \
            if Path("/etc/postgresql").is_dir() else []
        if not versions:
            raise SuiteError("PostgreSQL is not running on 127.0.0.1:5432 nor installed")
        log(f"starting PostgreSQL {versions[-1]}")
        run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"])
        wait_for(lambda: port_open(5432), 30, "PostgreSQL")
    if not port_open(6379):
        log("starting Redis")
        for directory in ("/var/lib/redis", "/var/log/redis"):
            Path(directory).mkdir(parents=True, exist_ok=True)
        run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port",
             "6379", "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
             "--logfile", "/var/log/redis/ci.log"])
        wait_for(lambda: port_open(6379), 30, "Redis")


def fresh_schema(schema: str) -> str:
    """Schema ``schema`` of the database ``idp_bench`` (created once, kept: dropping a
    database forces a checkpoint), emptied; the URL that makes it the search path."""
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (BENCH_DATABASE,)).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    drop_schema(schema)
    with psycopg.connect(BENCH_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{BENCH_URL}?options=-csearch_path%3D{schema}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(BENCH_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def schema_name(kind: str) -> str:
    """A schema of this run: runs from several worktrees of one machine (each CI run
    has a smoke) must not drop each other's."""
    return f"bench_{kind}_{os.getpid()}"


def drop_stale_schemas() -> None:
    """The schemas and Redis keys of runs whose process is gone (killed, say)."""
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (BENCH_DATABASE,)).fetchone():
            return
    with psycopg.connect(BENCH_URL, autocommit=True, connect_timeout=5) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench%'")]
    for name in names:
        pid = name.rsplit("_", 1)[-1]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            delete_redis_keys(f"{BENCH_DATABASE}:{name}:")
            drop_schema(name)


def delete_redis_keys(prefix: str) -> None:
    """Delete the keys under ``prefix`` in the benchmark's Redis database (no FLUSHDB)."""
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=10)
    batch = []
    for key in client.scan_iter(match=prefix + "*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)


def seed_accounts(database_url: str, template: str, accounts: int) -> None:
    """Copy the account ``template`` (created by ``idp users create``: real password hash,
    terms accepted) into ``accounts - 1`` more, seed-0000001@bench.invalid..., in one
    INSERT ... SELECT: every column follows the model, only id, e-mail and names vary."""
    varying = {"id": "gen_random_uuid()::text",
               "email": f"'seed-' || lpad(i::text, 7, '0') || '@{EMAIL_DOMAIN}'",
               "given_name": "'Given' || i", "family_name": "'Family' || i"}
    with psycopg.connect(database_url, autocommit=True) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' "
            "AND table_schema = current_schema() ORDER BY ordinal_position")]
        values = ", ".join(varying.get(name, f't."{name}"') for name in names)
        columns = ", ".join(f'"{name}"' for name in names)
        conn.execute(f"INSERT INTO users ({columns}) SELECT {values} FROM users t, "
                     "generate_series(1, %s) AS i WHERE t.email = %s",
                     (accounts - 1, template))
        # The aftermath of a bulk insert (hint bits, visibility map, autovacuum) is done
        # now, not charged to the first windows.
        conn.execute("VACUUM (ANALYZE) users")


def account(i: int) -> str:
    return f"seed-{i:07d}@{EMAIL_DOMAIN}"


# -- CPU from /proc ------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(name, parent pid, own CPU ticks, reaped children's CPU ticks) of a process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    return comm, int(fields[1]), int(fields[11]) + int(fields[12]), \
        int(fields[13]) + int(fields[14])


def processes() -> dict[int, tuple[str, int, int, int]]:
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") \
            .replace("\0", " ").split()
    except OSError:
        return []


def tree_seconds(root: int, procs: dict) -> float:
    """CPU seconds of a process, its live descendants and the children it reaped."""
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    ticks, todo = (procs[root][3] if root in procs else 0), [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            ticks += procs[pid][2]
            todo.extend(children.get(pid, ()))
    return ticks / CLK_TCK


def postgres_seconds(database: str, procs: dict) -> float:
    """CPU seconds of the PostgreSQL cluster: the postmaster, its background processes and
    the backends of ``database`` (the benchmark's: an idle provider's backends cost
    nothing); other databases' backends (say, a test suite running on the same machine)
    are left out. The provider's pool keeps its backends alive."""
    ticks = 0
    for pid, (comm, ppid, own, _) in procs.items():
        if not comm.startswith("postgres"):
            continue
        parent = procs.get(ppid)
        if parent is not None and parent[0].startswith("postgres"):
            # "postgres: 15/main: USER DATABASE HOST(PORT) STATE" for a backend.
            words = _cmdline(pid)
            if len(words) >= 5 and "(" in words[4] and words[3] != database:
                continue
        ticks += own
    return ticks / CLK_TCK


def redis_seconds(procs: dict) -> float:
    return sum(own for comm, _, own, _ in procs.values()
               if comm.startswith("redis-server")) / CLK_TCK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


# -- managed servers -----------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    database: str | None = None  # the PostgreSQL database whose backends are charged to it

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self, cmd: list[str], env: dict, cwd: Path, log_path: Path,
               timeout: float = 60) -> None:
        self.log_path = log_path
        with log_path.open("ab") as handle:
            self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=handle,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        url = self.issuer + "/.well-known/openid-configuration"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SuiteError(f"{self.name} exited with {self.proc.returncode}:\n"
                                 f"{log_path.read_text(errors='replace')[-3000:]}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SuiteError(f"{self.name} not answering {url} within {timeout}s")
            time.sleep(0.2)

    def cpu_seconds(self, procs: dict) -> float:
        return tree_seconds(self.proc.pid, procs) if self.proc else 0.0

    def memory_mib(self) -> float:
        """Resident memory of the server's processes (their sum), in MiB."""
        procs = processes()
        pids, todo = [], [self.proc.pid]
        while todo:
            pids.append(todo.pop())
            todo.extend(p for p, stat in procs.items() if stat[1] == pids[-1])
        pages = 0
        for pid in pids:
            try:
                pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except OSError:
                pass
        return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


def _generous_ip_limits() -> dict[str, str]:
    """All the load comes from one address: the per-address limits stay on (their cost is
    part of each request) with limits no benchmark reaches."""
    sys.path.insert(0, str(ROOT))
    from idp.config import RateLimitSettings
    return {f"IDP_RATE_LIMITS__{f.name.upper()}": "100000000/minute"
            for f in dataclasses.fields(RateLimitSettings) if f.name.endswith("_per_ip")}


@dataclass
class Provider:
    """compte-usager under ``idp serve`` on a schema of its own, with its clients and
    ``accounts`` seeded accounts."""

    workdir: Path
    schema: str
    accounts: int
    workers: int = 2
    threads: int = 4
    server: Server = field(init=False)
    database_url: str = ""
    web: tuple[str, str] = ("", "")
    service: tuple[str, str] = ("", "")

    def __post_init__(self) -> None:
        self.server = Server(f"idp serve ({self.schema})", database=BENCH_DATABASE)
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def redis_prefix(self) -> str:
        return f"{BENCH_DATABASE}:{self.schema}:"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        if "IDP_CONFIG" in os.environ:  # another configuration file, passed on
            env["IDP_CONFIG"] = os.environ["IDP_CONFIG"]
        env.update(_generous_ip_limits())
        env.update({
            "IDP_ISSUER": self.server.issuer,
            "IDP_DATABASE_URL": self.database_url,
            "IDP_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "IDP_REDIS_PREFIX": self.redis_prefix,
            "IDP_SECRET_KEY": "bench-secret-key-" + "0" * 40,
            "IDP_KEYS_DIR": str(self.workdir / "keys"),
            "IDP_INSTANCE_DIR": str(self.workdir / "instance"),
            "IDP_MESSAGING__OUTBOX_DIR": str(self.workdir / "outbox"),
            "IDP_AUTO_MIGRATE": "true",  # the first `idp` command creates the schema
        })
        return env

    def idp(self, *args: str) -> str:
        return run([str(Path(sys.executable).parent / "idp"), *args], env=self.env())

    def prepare(self) -> None:
        """A new schema, migrated and seeded, and the clients registered."""
        self.database_url = fresh_schema(self.schema)
        delete_redis_keys(self.redis_prefix)
        self.web = self._client("bench-web", "--grant-type", "authorization_code",
                                "--grant-type", "refresh_token", "--scope", "openid",
                                "--scope", "profile", "--scope", "email",
                                "--scope", "offline_access", "--no-consent")
        self.service = self._client("bench-service", "--grant-type", "client_credentials")
        self.idp("users", "create", "--email", account(0), "--password", PASSWORD,
                 "--given-name", "Given0", "--family-name", "Family0")
        started = time.monotonic()
        seed_accounts(self.database_url, account(0), self.accounts)
        log(f"{self.schema}: {self.accounts:,} accounts in {time.monotonic() - started:.1f}s")

    def _client(self, name: str, *options: str) -> tuple[str, str]:
        out = self.idp("clients", "create", "--name", name, "--redirect-uri", REDIRECT_URI,
                       "--auth-method", "client_secret_basic", *options, "--json")
        data = json.loads(out[out.index("{"):])
        return data["client_id"], data["client_secret"]

    def start(self, threads: int | None = None) -> None:
        self.threads = threads or self.threads
        cmd = [str(Path(sys.executable).parent / "idp"), "serve", "--host", "127.0.0.1",
               "--port", str(self.server.port), "--workers", str(self.workers),
               "--threads", str(self.threads)]
        self.server.launch(cmd, self.env(), ROOT, self.workdir / "serve.log")

    def stop(self) -> None:
        self.server.stop()

    def cleanup(self) -> None:
        self.stop()
        delete_redis_keys(self.redis_prefix)
        drop_schema(self.schema)


def npm_install(timeout: float = 180) -> str:
    """``npm ci`` in bench/reference unless node_modules already matches the lock file."""
    lock = json.loads((REFERENCE / "package-lock.json").read_text())
    wanted = lock["packages"]["node_modules/oidc-provider"]["version"]
    installed = REFERENCE / "node_modules" / "oidc-provider" / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == wanted:
        return wanted
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise SuiteError("node or npm not found (Node.js 20.19+ is needed for the reference)")
    log(f"npm ci in bench/reference (oidc-provider {wanted})")
    run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", "--fetch-retries=1"],
        cwd=REFERENCE, timeout=timeout)
    return wanted


def start_reference(workdir: Path, secret: str) -> tuple[Server, str]:
    """node oidc-provider (bench/reference/server.js): the server and its version."""
    version = npm_install()
    node = shutil.which("node")
    server = Server("node oidc-provider")
    env = {**os.environ, "PORT": str(server.port), "BENCH_REDIRECT": REDIRECT_URI,
           "BENCH_SECRET": secret, "NODE_ENV": "production"}
    server.launch([node, "server.js"], env, REFERENCE, workdir / "node.log")
    node_version = run([node, "--version"]).strip()
    return server, f"oidc-provider {version} on node {node_version}"

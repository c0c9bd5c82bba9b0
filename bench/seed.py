"""Fill the provider's ``users`` table up to a number of accounts, in bulk.

    python bench/seed.py --accounts 1000000 --database-url postgresql://postgres@127.0.0.1/idp_bench

Adds accounts ``seed-0000001@bench.invalid``... until the table holds ``--accounts`` rows
(existing rows count, nothing is deleted), then runs ANALYZE so that the planner sees
the new size. On PostgreSQL the rows go through ``COPY`` (about 10-20 s per million
rows here, most of it maintaining the unique email index); on SQLite through one
``executemany`` transaction.

All seeded accounts share one argon2id hash (of a password nobody uses), computed with
the configured parameters, so that their rows look like real ones. The columns come from
the database itself: every NOT NULL column without a database default gets a value,
named ones (``email``, ``password_hash``...) a realistic one, the others one of their
type, so a column added to the model later does not break the seeding.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
import time
import uuid
from pathlib import Path

EMAIL_DOMAIN = "bench.invalid"
_TERMS_VERSION = ""  # set by seed() from the provider's settings
SEED_PASSWORD = "seeded account, password never used"


def shared_hash(argon2: tuple[int, int, int] | None = None) -> str:
    """The hash every seeded account shares: with ``argon2`` (memory KiB, passes,
    lanes), else with the provider's configured parameters."""
    from argon2 import PasswordHasher
    memory, time_cost, parallelism = argon2 or argon2_parameters()
    return PasswordHasher(memory_cost=memory, time_cost=time_cost,
                          parallelism=parallelism).hash(SEED_PASSWORD)


def _settings():
    """The provider's settings (same environment as the provider), or None."""
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from idp.config import load_settings
        return load_settings()
    except Exception:  # noqa: BLE001 - the provider may not be importable here
        return None


def argon2_parameters() -> tuple[int, int, int]:
    """The provider's configured argon2id parameters, or its documented defaults."""
    settings = _settings()
    if settings is None:
        return 19 * 1024, 2, 1
    p = settings.passwords
    return p.argon2_memory_kib, p.argon2_time_cost, p.argon2_parallelism


def terms_version() -> str:
    """The version of the terms of use in force: seeded accounts have accepted it, or
    the provider would ask each of them to accept it at sign-in."""
    settings = _settings()
    return settings.registration.terms_version if settings is not None else ""


def _value_for(name: str, kind: str, i: int, now: str, password_hash: str) -> str | None:
    """A value for column ``name`` of row ``i`` (text form), None to leave it out."""
    named = {
        "terms_version": _TERMS_VERSION,
        "terms_accepted_at": now,
        "id": None,  # filled by the caller (uuid)
        "email": f"seed-{i:07d}@{EMAIL_DOMAIN}",
        "email_verified": "true",
        "password_hash": password_hash,
        "password_changed_at": now,
        "given_name": f"Given{i}",
        "family_name": f"Family{i}",
        "locale": "fr",
        "preferred_contact": "email",
        "notifications_email": "true",
        "population": "usager",
        "phone_number_verified": "false",
        "is_admin": "false",
        "disabled": "false",
        "created_at": now,
        "updated_at": now,
    }
    if name in named:
        return named[name]
    kind = kind.lower()
    if "bool" in kind:
        return "false"
    if "int" in kind or "numeric" in kind or "double" in kind or "real" in kind:
        return "0"
    if "timestamp" in kind or "datetime" in kind:
        return now
    if kind == "date":
        return now[:10]
    if "json" in kind:
        return "{}"
    return ""


def _columns_postgres(conn) -> list[tuple[str, str, bool]]:
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable = 'NO' AND column_default IS NULL "
        "FROM information_schema.columns WHERE table_name = 'users' "
        "AND table_schema = current_schema() ORDER BY ordinal_position").fetchall()
    if not rows:
        raise SystemExit("no users table: migrate the database first (idp db upgrade)")
    return rows


def _wanted(columns: list[tuple[str, str, bool]]) -> list[tuple[str, str]]:
    always = {"id", "email", "email_verified", "password_hash", "given_name", "family_name",
              "created_at", "updated_at"}
    if _TERMS_VERSION:
        always |= {"terms_version", "terms_accepted_at"}
    return [(name, kind) for name, kind, required in columns if required or name in always]


def seed_postgres(url: str, accounts: int, batch: int = 50_000,
                  argon2: tuple[int, int, int] | None = None) -> int:
    import psycopg
    url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=False) as conn:
        existing = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        first = conn.execute(
            "SELECT count(*) FROM users WHERE email LIKE %s", (f"%@{EMAIL_DOMAIN}",)
        ).fetchone()[0] + 1
        missing = accounts - existing
        if missing <= 0:
            return 0
        columns = _wanted(_columns_postgres(conn))
        names = [name for name, _ in columns]
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        password_hash = shared_hash(argon2)
        # Constant columns are rendered once; only id/email/names vary per row.
        template = []
        for name, kind in columns:
            if name == "id":
                template.append(None)
            else:
                sample = _value_for(name, kind, 0, now, password_hash)
                varying = sample != _value_for(name, kind, 1, now, password_hash)
                template.append((name, kind, varying, _escape(sample)))
        copy_sql = f"COPY users ({', '.join(names)}) FROM STDIN"
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for start in range(first, first + missing, batch):
                buf = io.StringIO()
                for i in range(start, min(start + batch, first + missing)):
                    fields = []
                    for item in template:
                        if item is None:
                            fields.append(str(uuid.uuid4()))
                        elif item[2]:
                            fields.append(_escape(_value_for(item[0], item[1], i, now,
                                                             password_hash)))
                        else:
                            fields.append(item[3])
                    buf.write("\t".join(fields))
                    buf.write("\n")
                copy.write(buf.getvalue())
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE users")
        return missing


def _escape(value: str) -> str:
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def seed_sqlite(url: str, accounts: int, argon2: tuple[int, int, int] | None = None) -> int:
    import sqlite3
    path = url.split(":///", 1)[1]
    conn = sqlite3.connect(path)
    try:
        existing = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        first = conn.execute("SELECT count(*) FROM users WHERE email LIKE ?",
                             (f"%@{EMAIL_DOMAIN}",)).fetchone()[0] + 1
        missing = accounts - existing
        if missing <= 0:
            return 0
        info = conn.execute("PRAGMA table_info(users)").fetchall()
        columns = _wanted([(r[1], r[2] or "", bool(r[3]) and r[4] is None) for r in info])
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(" ")
        password_hash = shared_hash(argon2)

        def rows():
            for i in range(first, first + missing):
                row = []
                for name, kind in columns:
                    if name == "id":
                        row.append(str(uuid.uuid4()))
                        continue
                    value = _value_for(name, kind, i, now, password_hash)
                    if value in ("true", "false") and "bool" in kind.lower():
                        value = 1 if value == "true" else 0
                    row.append(value)
                yield row
        names = [name for name, _ in columns]
        with conn:
            conn.executemany(f"INSERT INTO users ({', '.join(names)}) VALUES "
                             f"({', '.join('?' * len(names))})", rows())
        conn.execute("ANALYZE users")
        return missing
    finally:
        conn.close()


def seed(url: str, accounts: int, argon2: tuple[int, int, int] | None = None) -> int:
    """Fill the users table up to ``accounts`` rows; ``argon2`` as in :func:`shared_hash`
    (it must match the provider's settings, or each sign-in would rehash)."""
    global _TERMS_VERSION
    _TERMS_VERSION = terms_version()
    if url.startswith("sqlite"):
        return seed_sqlite(url, accounts, argon2=argon2)
    if url.startswith("postgres"):
        return seed_postgres(url, accounts, argon2=argon2)
    raise SystemExit(f"unsupported database URL: {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, required=True,
                        help="number of rows the users table must hold afterwards")
    parser.add_argument("--database-url", required=True,
                        help="postgresql://... or sqlite:///path (the provider's IDP_DATABASE_URL)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    added = seed(args.database_url, args.accounts)
    print(f"added {added} accounts in {time.perf_counter() - started:.1f}s "
          f"(table now holds at least {args.accounts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

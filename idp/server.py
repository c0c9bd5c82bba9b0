"""``idp serve``: the production server, granian, as it comes.

granian reads and parses requests in its own event loop (Rust) and hands only complete
requests to a pool of Python threads running the Flask application: a client that sends
slowly, or pipelines requests and never reads the answers, costs a socket, not a thread.
Everything about HTTP is granian's; the project only chooses its settings
(``[server]`` in ``config/idp.toml``).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from dataclasses import replace

from .config import ServerSettings, Settings
from .metrics import MULTIPROCESS_DIR

WSGI_TARGET = "idp.wsgi:app"


def effective(server: ServerSettings, **overrides: object) -> ServerSettings:
    """``server`` with the command line's options (those given) applied, and the number
    of workers resolved (0: one per core)."""
    chosen = replace(server, **{k: v for k, v in overrides.items() if v is not None})
    if chosen.workers == 0:
        chosen = replace(chosen, workers=os.cpu_count() or 1)
    return chosen


def prepare(settings: Settings) -> None:
    """What must happen once before the workers start, not once per worker: the schema
    migrated and the signing keys generated (two workers would race on both)."""
    from .oidc.keys import KeyStore
    from .persistence.db import Database
    from .persistence.migrate import ensure_schema

    settings.instance_path.mkdir(parents=True, exist_ok=True)
    if settings.auto_migrate:
        db = Database(settings.effective_database_url)
        try:
            ensure_schema(db)
        finally:
            db.dispose()
    KeyStore(settings.keys_path, settings.tokens.signing_algs).ensure()


def share_metrics(settings: Settings) -> None:
    """Each worker writes its metrics to files of one folder, which ``/metrics`` adds up
    (prometheus_client's multi-process mode). The workers are spawned, not forked: a
    fresh interpreter reads the folder's variable when it imports the library."""
    folder = settings.instance_path / "prometheus"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR] = str(folder)
    multiprocessing.set_start_method("spawn", force=True)


def serve(settings: Settings, server: ServerSettings) -> None:
    """Run granian until it is stopped (SIGINT, SIGTERM)."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    prepare(settings)
    share_metrics(settings)
    Granian(
        WSGI_TARGET,
        address=server.host,
        port=server.port,
        interface=Interfaces.WSGI,
        workers=server.workers,
        blocking_threads=server.threads,
        backlog=server.backlog,
        http1_settings=HTTP1Settings(header_read_timeout=server.header_read_timeout * 1000),
        # The application writes the access log (idp/logs.py): granian's shows the
        # decoded path, in which an encoded line break forges a line.
        log_access=False,
        respawn_failed_workers=True,
    ).serve()

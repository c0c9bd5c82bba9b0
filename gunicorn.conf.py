"""gunicorn settings for compte-usager (production and the benchmark suite).

    gunicorn -c gunicorn.conf.py            # from the project's root (loaded by default there)

``gthread`` workers keep client connections alive (a sync worker closes the connection
after every response) and serve several requests at once: with the same two workers,
throughput of the small protocol requests went up by half to two thirds and their latency
down by a third (docs/performance.md). Their CPU per request is about that of sync workers:
the thread hand-off costs what the saved TCP accept and close did. The threads share the
worker's keys, client cache and connection pools; the argon2 verification releases the GIL.

Memory: a worker grows from about 100 MiB to 185 MiB under sign-in load, each thread
keeping its last argon2 buffer (19 MiB) for reuse; ``MALLOC_ARENA_MAX=2`` in the service's
environment trims that, a fixed ``MALLOC_MMAP_THRESHOLD_`` gives it all back at a cost of
10-15 ms of CPU per sign-in (docs/performance.md).

Environment: ``GUNICORN_WORKERS`` (default: one per core), ``GUNICORN_THREADS`` (4),
``GUNICORN_BIND`` (``0.0.0.0:8000``), ``GUNICORN_KEEPALIVE`` (75 s),
``GUNICORN_WORKER_CLASS`` (``gthread``; ``sync`` to compare). Command-line options
override this file.
"""

import os

wsgi_app = "idp.wsgi:app"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", os.cpu_count() or 2))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Behind a load balancer, keep this above the balancer's idle timeout towards us.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
timeout = 30
graceful_timeout = 30

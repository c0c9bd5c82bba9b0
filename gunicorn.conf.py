"""gunicorn settings for compte-usager (production and the benchmark suite).

    gunicorn -c gunicorn.conf.py            # from the project's root (loaded by default there)

Workers are ``idp.web.gunicorn_worker.ProtocolWorker``: gunicorn's ``gthread`` (client
connections kept alive, a pool of threads per worker), except that a protocol request
(token, userinfo, introspection, revocation, discovery, JWKS) whose bytes have all arrived
is answered on the worker's event loop instead of being handed to a pool thread and back.
Against plain ``gthread`` that saved about a third of the CPU of a discovery or JWKS
request and a tenth of a refresh grant (docs/performance-history.md, third pass). Browser
pages, and so every password check, still run in the pool; the threads share the worker's
keys, client cache and connection pools, and the argon2 verification releases the GIL.

Memory: a worker grows from about 100 MiB to 185 MiB under sign-in load, each thread
keeping its last argon2 buffer (19 MiB) for reuse; ``MALLOC_ARENA_MAX=2`` in the service's
environment trims that, a fixed ``MALLOC_MMAP_THRESHOLD_`` gives it all back at a cost of
10-15 ms of CPU per sign-in (docs/performance-history.md, second pass).

Environment: ``GUNICORN_WORKERS`` (default: one per core), ``GUNICORN_THREADS`` (4),
``GUNICORN_BIND`` (``0.0.0.0:8000``), ``GUNICORN_KEEPALIVE`` (75 s),
``GUNICORN_KEEPALIVE_REQUESTS`` (100: the worker above closes a connection after that
many requests, so that kept-alive connections spread over the workers; 0 for no limit;
read by the worker, since gunicorn ignores settings it does not know here),
``GUNICORN_WORKER_CLASS`` (the worker above; ``gthread`` or ``sync`` to compare).
Command-line options override this file.
"""

import os

wsgi_app = "idp.wsgi:app"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", os.cpu_count() or 2))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "idp.web.gunicorn_worker.ProtocolWorker")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Behind a load balancer, keep this above the balancer's idle timeout towards us.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
timeout = 30
graceful_timeout = 30

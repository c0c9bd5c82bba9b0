"""gunicorn settings for compte-usager (production and the benchmark suite).

    gunicorn -c gunicorn.conf.py            # from the project's root (loaded by default there)

``gthread`` workers keep client connections alive: a sync worker closes the connection
after every response, so each request pays a TCP accept and close, about half of the CPU
of a discovery or JWKS request (docs/performance.md). The threads share the worker's
keys, caches and connection pools; the argon2 verification releases the GIL.

Environment: ``GUNICORN_WORKERS`` (default: one per core), ``GUNICORN_THREADS`` (4),
``GUNICORN_BIND`` (``0.0.0.0:8000``). Command-line options override this file.
"""

import os

wsgi_app = "idp.wsgi:app"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", os.cpu_count() or 2))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Behind a load balancer, keep this above the balancer's idle timeout towards us.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
timeout = 30
graceful_timeout = 30

"""The floor of the production setup: gunicorn serving a static document.

A WSGI app that answers every request with the same JSON document (our provider's
discovery document, rewritten for this server's issuer), run by bench/run.py under the
same gunicorn command as the provider. Its CPU per request is what gunicorn's sync
workers cost before any of the provider's code runs (a new TCP connection per request,
HTTP parsing, WSGI), the floor under scenarios 1a and 1b.
"""

import os

with open(os.environ["BENCH_FLOOR_DOCUMENT"], "rb") as fh:
    BODY = fh.read()
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY))),
           ("Cache-Control", "public, max-age=3600")]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]

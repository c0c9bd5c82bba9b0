"""WSGI app for tests/web/test_gunicorn_worker.py: answers which thread served the request.

"loop" is the worker's main thread (its event loop), "pool" one of gthread's pool threads.
"""

import threading


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    where = b"loop" if threading.current_thread() is threading.main_thread() else b"pool"
    payload = b" ".join([where, environ["PATH_INFO"].encode(), body])
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(payload)))])
    return [payload]

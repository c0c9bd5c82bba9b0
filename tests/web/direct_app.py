"""WSGI app for tests/web/test_direct.py: says whether the worker answered the request
directly ("direct": idp/web/direct.py reads the body from memory) or through
gunicorn's parser ("parsed", read by its own body reader; the same length on purpose),
and echoes the body. ``POST /revoke`` with the body ``fail`` raises."""

import io


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    if environ["PATH_INFO"] == "/revoke" and body == b"fail":
        raise RuntimeError("the application failed")
    how = b"direct" if isinstance(environ["wsgi.input"], io.BytesIO) else b"parsed"
    payload = b" ".join([how, body])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Cache-Control", "no-store"),
                              ("Content-Length", str(len(payload)))])
    return [payload]

"""WSGI app for tests/web/test_gunicorn_worker.py: a public document served as
``idp.oidc.endpoints.discovery.PublicDocuments`` serves them (a ``document(path)``
method, and the same answer to a WSGI ``GET``), and ``/reached``: how many requests
reached the app (that one excepted)."""

import json
import threading

BODY = json.dumps({"keys": [{"kty": "EC", "kid": "test", "crv": "P-256"}]}).encode()


class Documents:
    def __init__(self) -> None:
        self.reached = 0
        self.lock = threading.Lock()

    def document(self, path):
        if path == "/.well-known/openid-configuration":  # cannot be built right now
            raise RuntimeError("keys unreadable")
        if path != "/jwks.json":
            return None
        return BODY, [("Cache-Control", "public, max-age=300"),
                      ("Content-Type", "application/jwk-set+json"),
                      ("Content-Length", str(len(BODY))), ("X-Content-Type-Options", "nosniff")]

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] == "/reached":
            body = str(self.reached).encode()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        with self.lock:
            self.reached += 1
        try:
            found = self.document(environ["PATH_INFO"]) \
                if environ["REQUEST_METHOD"] == "GET" else None
        except RuntimeError:
            body = b"broken"
            start_response("500 Internal Server Error", [("Content-Length", str(len(body)))])
            return [body]
        if found is None:
            body = b"not a document"
            start_response("404 Not Found", [("Content-Length", str(len(body)))])
            return [body]
        start_response("200 OK", found[1])
        return [found[0]]


app = Documents()

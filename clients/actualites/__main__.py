"""``python -m clients.actualites``: serve the app on ACTUALITES_BASE_URL's host and port."""

from __future__ import annotations

from urllib.parse import urlsplit

from werkzeug.serving import run_simple

from .app import create_app


def main() -> None:
    app = create_app()
    base = urlsplit(app.config["BASE_URL"])
    port = base.port or (443 if base.scheme == "https" else 80)
    run_simple(base.hostname or "127.0.0.1", port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()

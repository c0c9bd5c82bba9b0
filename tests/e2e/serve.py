"""``python -m tests.e2e.serve PORT``: the provider, configured from IDP_* variables,
served by werkzeug on 127.0.0.1:PORT (threaded), for the live-server tests."""

from __future__ import annotations

import sys

from werkzeug.serving import run_simple

from idp import create_app


def main() -> None:
    run_simple("127.0.0.1", int(sys.argv[1]), create_app(), threaded=True,
               use_reloader=False)


if __name__ == "__main__":
    main()

"""``python -m clients.actualites``: serve the app on ACTUALITES_BASE_URL's host and port."""

from ..common.web import serve
from .app import create_app

if __name__ == "__main__":
    serve(create_app)

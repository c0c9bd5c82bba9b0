"""Persistence: the database (SQLAlchemy 2 models, Alembic migrations) and the key-value
store (Redis, or an in-process fallback for the one-process default).

Nothing here imports from the web layer.
"""

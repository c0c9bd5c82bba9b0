"""Self-service flows (login, registration, recovery, verification, settings).

Each flow is a ``Flow`` with an id, a type, a state and an expiry (as ORY Kratos models
them), bound to the browser session that started it, and kept in the key-value store
beside that session (``base.py``).
"""

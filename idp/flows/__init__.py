"""Self-service flows (login, registration, recovery, verification, settings).

Each flow is a ``Flow`` row with an id, a type, a state and an expiry (as ORY Kratos
models them), bound to the browser session that started it.
"""

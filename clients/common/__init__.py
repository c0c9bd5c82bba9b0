"""What the sample apps of ``clients/`` share: sign-in with the provider (Authlib's Flask
client), calls to the hub's APIs (``requests``, a client_credentials token), an outbox
for their e-mails, CSRF tokens and security headers, file type checks.

Nothing here imports ``idp``: the apps talk to the provider over HTTP only.
"""

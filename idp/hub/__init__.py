"""The citizen account as a hub (issue 32): what démarche apps report for a user
(requests, notifications), the document wallet, the subscriptions to themes.

Plain functions over a SQLAlchemy session; the JSON APIs (``idp/api``) and the pages of
"Mon compte" call them. Nothing here imports the web layer.
"""


class HubError(Exception):
    """A refused operation: an error code (RFC 6749 style), a description, a status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

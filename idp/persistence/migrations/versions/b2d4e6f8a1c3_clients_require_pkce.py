"""clients.require_pkce: PKCE on every authorization request, confidential clients too

Revision ID: b2d4e6f8a1c3
Revises: 3c1f0a9d2b7e
"""

import sqlalchemy as sa
from alembic import op

revision = "b2d4e6f8a1c3"
down_revision = "3c1f0a9d2b7e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("require_pkce", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("require_pkce")

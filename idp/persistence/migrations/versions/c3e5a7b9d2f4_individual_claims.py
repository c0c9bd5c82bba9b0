"""grants.claims and consents.claims: claims consented to one by one (claims parameter)

Revision ID: c3e5a7b9d2f4
Revises: b2d4e6f8a1c3
"""

import sqlalchemy as sa
from alembic import op

revision = "c3e5a7b9d2f4"
down_revision = "b2d4e6f8a1c3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("grants", "consents"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("claims", sa.JSON(), nullable=False,
                                       server_default=sa.text("'[]'")))


def downgrade() -> None:
    for table in ("grants", "consents"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("claims")

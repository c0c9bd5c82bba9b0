"""logout propagation: clients' logout URIs, sessions' propagation time, deliveries

Revision ID: d4f6b8c1e3a5
Revises: c3e5a7b9d2f4
"""

import sqlalchemy as sa
from alembic import op

from idp.persistence.models.base import UTCDateTime

revision = "d4f6b8c1e3a5"
down_revision = "c3e5a7b9d2f4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("backchannel_logout_uri", sa.String(500), nullable=True))
        batch.add_column(sa.Column("frontchannel_logout_uri", sa.String(500), nullable=True))
    with op.batch_alter_table("sso_sessions") as batch:
        batch.add_column(sa.Column("logout_propagated_at", UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "logout_deliveries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("sid", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("delivered_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("abandoned_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logout_deliveries")),
    )
    op.create_index(op.f("ix_logout_deliveries_client_id"), "logout_deliveries",
                    ["client_id"])
    op.create_index(op.f("ix_logout_deliveries_next_attempt_at"), "logout_deliveries",
                    ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("logout_deliveries")
    with op.batch_alter_table("sso_sessions") as batch:
        batch.drop_column("logout_propagated_at")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("frontchannel_logout_uri")
        batch.drop_column("backchannel_logout_uri")

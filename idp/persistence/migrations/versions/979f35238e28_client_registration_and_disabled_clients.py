"""client registration (initial access tokens, registration access tokens), disabled
clients, and an index for a client's recent audit events

Revision ID: 979f35238e28
Revises: c3fa3941d4d1
"""
import sqlalchemy as sa
from alembic import op

import idp.persistence.models.base

revision = "979f35238e28"
down_revision = "c3fa3941d4d1"
branch_labels = None
depends_on = None

UTC = idp.persistence.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "initial_access_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("last_used_at", UTC, nullable=True),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initial_access_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_initial_access_tokens_token_hash")),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.create_index("ix_audit_events_client_id_created_at", ["client_id", "created_at"])
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("disabled", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("initial_access_token_id", sa.String(length=36),
                                   nullable=True))
        batch.add_column(sa.Column("registration_token_hash", sa.String(length=64),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("registration_token_hash")
        batch.drop_column("initial_access_token_id")
        batch.drop_column("disabled")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_index("ix_audit_events_client_id_created_at")
    op.drop_table("initial_access_tokens")

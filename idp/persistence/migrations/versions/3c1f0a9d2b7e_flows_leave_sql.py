"""flows leave SQL: they live in the key-value store (idp/flows/base.py)

Revision ID: 3c1f0a9d2b7e
Revises: e7c19781588e
Create Date: 2026-12-01 05:40:00

Flows in progress when this runs are dropped with the table: their browsers start the
step again (a login, a recovery), as after an expiry.
"""
from alembic import op
import sqlalchemy as sa
import idp.persistence.models.base


revision = '3c1f0a9d2b7e'
down_revision = 'e7c19781588e'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('flows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flows_user_id'))
        batch_op.drop_index(batch_op.f('ix_flows_expires_at'))
    op.drop_table('flows')


def downgrade() -> None:
    op.create_table('flows',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('browser', sa.String(length=64), nullable=True),
    sa.Column('return_to', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', idp.persistence.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', idp.persistence.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', idp.persistence.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flows'))
    )
    with op.batch_alter_table('flows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flows_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_flows_user_id'), ['user_id'], unique=False)

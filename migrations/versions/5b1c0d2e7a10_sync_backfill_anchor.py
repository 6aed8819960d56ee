"""sync_state: backfill anchor and local start time

Revision ID: 5b1c0d2e7a10
Revises: 4207b2a1ffd2
Create Date: 2026-11-24 00:50:00

"""
from alembic import op
import sqlalchemy as sa
import dashboard.types

revision = '5b1c0d2e7a10'
down_revision = '4207b2a1ffd2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backfill_last_source_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('backfill_started_at', dashboard.types.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table('sync_state', schema=None) as batch_op:
        batch_op.drop_column('backfill_started_at')
        batch_op.drop_column('backfill_last_source_id')

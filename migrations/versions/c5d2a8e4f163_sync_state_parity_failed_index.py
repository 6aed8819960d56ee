"""sync_state: partial index on parity failures (the dashboard's "has a failure" lookups)

Revision ID: c5d2a8e4f163
Revises: b3f1e5a7c920
Create Date: 2026-12-05 09:00:00

A type drifting from QuickBooks' count in two checks in a row needs attention like a
failed sync; the companies list asks which companies have one on every poll.
"""
from alembic import op
import sqlalchemy as sa

revision = 'c5d2a8e4f163'
down_revision = 'b3f1e5a7c920'
branch_labels = None
depends_on = None

PARITY_FAILED = sa.text("parity_drifts >= 2")


def upgrade():
    op.create_index('ix_sync_state_parity_failed', 'sync_state', ['company_source_id'], unique=False,
                    postgresql_where=PARITY_FAILED, sqlite_where=PARITY_FAILED)


def downgrade():
    op.drop_index('ix_sync_state_parity_failed', table_name='sync_state')

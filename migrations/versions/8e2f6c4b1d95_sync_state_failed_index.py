"""sync_state: partial index on the failed states (the dashboard's "has a failure" lookups)

Revision ID: 8e2f6c4b1d95
Revises: 7c3e9a1d2f40
Create Date: 2026-11-24 04:45:00

"""
from alembic import op
import sqlalchemy as sa

revision = '8e2f6c4b1d95'
down_revision = '7c3e9a1d2f40'
branch_labels = None
depends_on = None

FAILED = sa.text("status = 'FAILED'")


def upgrade():
    op.create_index('ix_sync_state_failed', 'sync_state', ['company_source_id'], unique=False,
                    postgresql_where=FAILED, sqlite_where=FAILED)


def downgrade():
    op.drop_index('ix_sync_state_failed', table_name='sync_state')

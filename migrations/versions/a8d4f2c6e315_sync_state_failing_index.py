"""sync_state: one partial index on the states that need attention, for index-only scans

Revision ID: a8d4f2c6e315
Revises: d7a3b9e2c514
Create Date: 2026-12-05 16:40:00

The companies page counts the companies with a failure (a failed sync or a parity
failure of a type that is switched on) on every poll, and looks them up for the first
page. The two partial indexes on either kind of failure leave ``enabled`` to the table:
at 50,000 companies that count read some 3,000 heap pages. This index holds exactly the
states that need attention, so the count and the lookups are index-only scans.
"""
from alembic import op
import sqlalchemy as sa

revision = 'a8d4f2c6e315'
down_revision = 'd7a3b9e2c514'
branch_labels = None
depends_on = None

FAILING = sa.text("enabled AND (status = 'FAILED' OR parity_drifts >= 2)")


def upgrade():
    op.create_index('ix_sync_state_failing', 'sync_state', ['company_source_id'], unique=False,
                    postgresql_where=FAILING, sqlite_where=FAILING)


def downgrade():
    op.drop_index('ix_sync_state_failing', table_name='sync_state')

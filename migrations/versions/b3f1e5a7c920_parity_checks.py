"""parity checks: the company's next check and pending request, a type's drift start and error

Revision ID: b3f1e5a7c920
Revises: 9a4d3c2b1e07
Create Date: 2026-12-05 05:10:00

A check whose count Intuit refused is recorded too: ``parity_check.source_count`` may be
NULL, with the reason in ``error``.
"""
import sqlalchemy as sa
from alembic import op

import dashboard.types

revision = 'b3f1e5a7c920'
down_revision = '9a4d3c2b1e07'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (nullable): SQLite need not rebuild company, which others reference.
    op.add_column('company', sa.Column('parity_due_at', dashboard.types.UTCDateTime(), nullable=True))
    op.add_column('company', sa.Column('parity_requested_at', dashboard.types.UTCDateTime(), nullable=True))
    op.add_column('sync_state', sa.Column('parity_drift_since', dashboard.types.UTCDateTime(), nullable=True))
    op.add_column('sync_state', sa.Column('parity_error', sa.Text(), nullable=True))
    with op.batch_alter_table('parity_check') as batch_op:
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch_op.alter_column('source_count', existing_type=sa.Integer(), nullable=True)


def downgrade():
    op.execute("DELETE FROM parity_check WHERE source_count IS NULL")
    with op.batch_alter_table('parity_check') as batch_op:
        batch_op.alter_column('source_count', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('error')
    # Plain DROP COLUMN (SQLite 3.35+) for the same reason.
    for table, column in (('sync_state', 'parity_error'), ('sync_state', 'parity_drift_since'),
                          ('company', 'parity_requested_at'), ('company', 'parity_due_at')):
        op.drop_column(table, column)

"""sync_run: a partial unique index, one queued or running run per company

Revision ID: a3c9e5f7b102
Revises: f2b8c4d6e021
Create Date: 2026-12-05 12:05:00

Until now one active run per company rested on a Redis lock and a check in
request_sync; the database now refuses a second one whatever the code does.
"""
import sqlalchemy as sa
from alembic import op

revision = 'a3c9e5f7b102'
down_revision = 'f2b8c4d6e021'
branch_labels = None
depends_on = None

ONE_ACTIVE = sa.text("status IN ('queued', 'running')")


def upgrade():
    op.create_index('uq_sync_run_one_active', 'sync_run', ['company_source_id'], unique=True,
                    postgresql_where=ONE_ACTIVE, sqlite_where=ONE_ACTIVE)


def downgrade():
    op.drop_index('uq_sync_run_one_active', table_name='sync_run')

"""companies page at scale: an index of the states needing attention; trigram indexes for the search

Revision ID: a8d4f2c6e315
Revises: d7a3b9e2c514
Create Date: 2026-12-05 16:40:00

The companies page counts the companies with a failure (a failed sync or a parity
failure of a type that is switched on) on every poll, and looks them up for the first
page. The two partial indexes on either kind of failure leave ``enabled`` to the table:
at 50,000 companies that count read some 3,000 heap pages. This index holds exactly the
states that need attention, so the count and the lookups are index-only scans.

The search matches any part of a company's name or realm (``lower(x) LIKE '%text%'``),
which no B-tree serves: at 50,000 companies it tested every one (some 400 ms). Trigram
GIN indexes (pg_trgm) find the matches instead. PostgreSQL only, like ix_company_name_order:
SQLite has no such index, and the embedded backend never holds that many companies.
"""
from alembic import op
import sqlalchemy as sa

revision = 'a8d4f2c6e315'
down_revision = 'd7a3b9e2c514'
branch_labels = None
depends_on = None

FAILING = sa.text("enabled AND (status = 'FAILED' OR parity_drifts >= 2)")


TRIGRAM_COLUMNS = ("name", "source_id")


def upgrade():
    op.create_index('ix_sync_state_failing', 'sync_state', ['company_source_id'], unique=False,
                    postgresql_where=FAILING, sqlite_where=FAILING)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in TRIGRAM_COLUMNS:
            op.execute(f"CREATE INDEX ix_company_{column}_trgm ON company USING gin (lower({column}) gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for column in TRIGRAM_COLUMNS:
            op.execute(f"DROP INDEX ix_company_{column}_trgm")
    op.drop_index('ix_sync_state_failing', table_name='sync_state')

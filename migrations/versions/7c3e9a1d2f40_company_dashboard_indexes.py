"""company: indexes for the dashboard's listing order and its counts per connection state

Revision ID: 7c3e9a1d2f40
Revises: 5b1c0d2e7a10
Create Date: 2026-11-24 03:30:00

"""
from alembic import op
import sqlalchemy as sa

revision = '7c3e9a1d2f40'
down_revision = '5b1c0d2e7a10'
branch_labels = None
depends_on = None

# PostgreSQL only, as declared in dashboard/models.py: SQLite cannot reflect expression indexes.
NAME_ORDER = 'ix_company_name_order'


def _on_postgresql() -> bool:
    return op.get_context().dialect.name == 'postgresql'


def upgrade():
    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_company_connection_state'), ['connection_state'], unique=False)
    if _on_postgresql():
        op.create_index(NAME_ORDER, 'company', [sa.text("lower(coalesce(name, ''))"), 'source_id'], unique=False)


def downgrade():
    if _on_postgresql():
        op.drop_index(NAME_ORDER, table_name='company')
    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_company_connection_state'))

"""company: index on connection_state (the dashboard counts companies per state)

Revision ID: 9d4f2b7e1a63
Revises: 7c3e9a1d2f40
Create Date: 2026-11-24 03:45:00

"""
from alembic import op

revision = '9d4f2b7e1a63'
down_revision = '7c3e9a1d2f40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_company_connection_state'), ['connection_state'], unique=False)


def downgrade():
    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_company_connection_state'))

"""budget governor: metered calls per hour and company, and the governor's pace

Revision ID: d7a3b9e2c514
Revises: a3c9e5f7b102
Create Date: 2026-12-05 11:40:00

``metered_call`` counts Intuit's metered calls when no Redis is configured (with
REDIS_URL the counter lives in Redis and this table stays empty); ``budget_pace`` holds
one row, the governor's last decision, which the company pages show.
"""
import sqlalchemy as sa
from alembic import op

import dashboard.types

revision = 'd7a3b9e2c514'
down_revision = 'a3c9e5f7b102'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'metered_call',
        sa.Column('hour_start', dashboard.types.UTCDateTime(), nullable=False),
        sa.Column('company_source_id', sa.String(length=64), nullable=False),
        sa.Column('calls', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('hour_start', 'company_source_id', name=op.f('pk_metered_call')),
    )
    op.create_table(
        'budget_pace',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('base_interval_seconds', sa.Integer(), nullable=False),
        sa.Column('webhook_interval_seconds', sa.Integer(), nullable=False),
        sa.Column('idle_interval_seconds', sa.Integer(), nullable=False),
        sa.Column('used', sa.BigInteger(), nullable=False),
        sa.Column('projected', sa.BigInteger(), nullable=False),
        sa.Column('budget', sa.BigInteger(), nullable=False),
        sa.Column('decided_at', dashboard.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_pace')),
    )


def downgrade():
    op.drop_table('budget_pace')
    op.drop_table('metered_call')

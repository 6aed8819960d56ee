"""alerts and the refresh token's hard expiry: company.refresh_token_hard_expires_at, alert, alert_delivery

Revision ID: e7a4b2c9d130
Revises: d1a7e3f5b209
Create Date: 2026-12-05 11:40:00
"""
import sqlalchemy as sa
from alembic import op

import dashboard.types

revision = 'e7a4b2c9d130'
down_revision = 'd1a7e3f5b209'
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    # Plain ADD COLUMN (nullable): SQLite need not rebuild company, which others reference.
    op.add_column('company', sa.Column('refresh_token_hard_expires_at', dashboard.types.UTCDateTime(),
                                       nullable=True))
    op.create_table(
        'alert',
        sa.Column('id', PK, nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('company_source_id', sa.String(length=64), nullable=True),
        sa.Column('object_type', sa.String(length=32), nullable=True),
        sa.Column('stage', sa.String(length=32), nullable=True),
        sa.Column('title', sa.String(length=500), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('opened_at', dashboard.types.UTCDateTime(), nullable=False),
        sa.Column('last_notified_at', dashboard.types.UTCDateTime(), nullable=True),
        sa.Column('notifications', sa.Integer(), nullable=False),
        sa.Column('resolved_at', dashboard.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alert')),
        sa.UniqueConstraint('key', name=op.f('uq_alert_key')),
    )
    op.create_index(op.f('ix_alert_company_source_id'), 'alert', ['company_source_id'])
    op.create_index(op.f('ix_alert_resolved_at'), 'alert', ['resolved_at'])
    op.create_table(
        'alert_delivery',
        sa.Column('id', PK, nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('event', sa.String(length=16), nullable=False),
        sa.Column('title', sa.String(length=500), nullable=False),
        sa.Column('payload', dashboard.types.JSONType, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('next_attempt_at', dashboard.types.UTCDateTime(), nullable=True),
        sa.Column('created_at', dashboard.types.UTCDateTime(), nullable=False),
        sa.Column('finished_at', dashboard.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_delivery')),
    )
    op.create_index('ix_alert_delivery_status_created', 'alert_delivery', ['status', 'created_at'])
    op.create_index('ix_alert_delivery_channel_status', 'alert_delivery', ['channel', 'status'])


def downgrade():
    op.drop_index('ix_alert_delivery_channel_status', table_name='alert_delivery')
    op.drop_index('ix_alert_delivery_status_created', table_name='alert_delivery')
    op.drop_table('alert_delivery')
    op.drop_index(op.f('ix_alert_resolved_at'), table_name='alert')
    op.drop_index(op.f('ix_alert_company_source_id'), table_name='alert')
    op.drop_table('alert')
    op.drop_column('company', 'refresh_token_hard_expires_at')

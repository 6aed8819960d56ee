"""audit_event: the append-only trail of operator actions

Revision ID: d1a7e3f5b209
Revises: c5d2a8e4f163
Create Date: 2026-12-05 12:00:00

The database itself keeps the trail append-only: a trigger refuses every UPDATE, and a
DELETE of any row younger than 365 days, whatever the code does (retention prunes only
older rows). On PostgreSQL TRUNCATE, an administrator's act, is not a row operation.
"""
from alembic import op
import sqlalchemy as sa

import dashboard.types

revision = 'd1a7e3f5b209'
down_revision = 'c5d2a8e4f163'
branch_labels = None
depends_on = None

POSTGRESQL_TRIGGER = [
    """
    CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            RAISE EXCEPTION 'audit_event is append-only: a row cannot be updated';
        END IF;
        IF OLD.occurred_at > now() - interval '365 days' THEN
            RAISE EXCEPTION 'audit_event is append-only: a row younger than a year cannot be deleted';
        END IF;
        RETURN OLD;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()
    """,
]
# occurred_at is stored as naive UTC text on SQLite ("YYYY-MM-DD HH:MM:SS.ffffff"): its
# first 19 characters compare as text with datetime()'s output.
SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
    BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: a row cannot be updated'); END
    """,
    """
    CREATE TRIGGER audit_event_no_recent_delete BEFORE DELETE ON audit_event
    WHEN substr(OLD.occurred_at, 1, 19) > datetime('now', '-365 days')
    BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: a row younger than a year cannot be deleted'); END
    """,
]


def upgrade():
    op.create_table(
        'audit_event',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('occurred_at', dashboard.types.UTCDateTime(), nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('company_source_id', sa.String(length=64), nullable=True),
        sa.Column('object_type', sa.String(length=32), nullable=True),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('remote_addr', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event')),
    )
    op.create_index('ix_audit_event_occurred_at', 'audit_event', ['occurred_at'])
    op.create_index('ix_audit_event_action', 'audit_event', ['action'])
    op.create_index('ix_audit_event_company_occurred', 'audit_event', ['company_source_id', 'occurred_at'])
    for statement in POSTGRESQL_TRIGGER if op.get_bind().dialect.name == 'postgresql' else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER audit_event_append_only ON audit_event')
        op.execute('DROP FUNCTION audit_event_append_only()')
    op.drop_table('audit_event')

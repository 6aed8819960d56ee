"""object types: the 26 more tables of QuickBooks' accounting objects, the per-type switch, parity

Also new customer and invoice columns (invoice.txn_date becomes a date).

Revision ID: 9a4d3c2b1e07
Revises: 8e2f6c4b1d95
Create Date: 2026-12-05 03:40:00

The tables are written out here as data, frozen as they were on this day (the specs in
``dashboard/sync/objects.py`` may change after; a later change gets its own migration).
"""
from collections import namedtuple

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import dashboard.types

revision = '9a4d3c2b1e07'
down_revision = '8e2f6c4b1d95'
branch_labels = None
depends_on = None

Ref = namedtuple("Ref", "name target")
TYPES = {
    "text": lambda: sa.String(500), "code": lambda: sa.String(64), "date": sa.Date, "amount": lambda: sa.Numeric(18, 2),
    "number": lambda: sa.Numeric(18, 6), "int": sa.Integer, "bool": sa.Boolean,
}
# In creation order: a table comes after the tables its references point to.
TABLES = {
    'account': [('name', 'text'), ('fully_qualified_name', 'text'), ('account_type', 'text'), ('account_sub_type', 'text'), ('classification', 'text'), ('current_balance', 'amount'), ('currency', 'code'), Ref('parent', 'account'), ('active', 'bool')],
    'budget': [('name', 'text'), ('budget_type', 'text'), ('start_date', 'date'), ('end_date', 'date'), ('active', 'bool')],
    'class': [('name', 'text'), ('fully_qualified_name', 'text'), Ref('parent', 'class'), ('active', 'bool')],
    'department': [('name', 'text'), ('fully_qualified_name', 'text'), Ref('parent', 'department'), ('active', 'bool')],
    'employee': [('display_name', 'text'), ('given_name', 'text'), ('family_name', 'text'), ('email', 'text'), ('active', 'bool')],
    'payment_method': [('name', 'text'), ('type', 'text'), ('active', 'bool')],
    'tax_agency': [('display_name', 'text')],
    'tax_code': [('name', 'text'), ('description', 'text'), ('taxable', 'bool'), ('active', 'bool')],
    'term': [('name', 'text'), ('due_days', 'int'), ('active', 'bool')],
    'vendor': [('display_name', 'text'), ('company_name', 'text'), ('email', 'text'), ('balance', 'amount'), ('currency', 'code'), ('active', 'bool')],
    'item': [('name', 'text'), ('fully_qualified_name', 'text'), ('type', 'text'), ('unit_price', 'number'), Ref('income_account', 'account'), Ref('expense_account', 'account'), ('active', 'bool')],
    'journal_entry': [('doc_number', 'code'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code'), ('adjustment', 'bool')],
    'tax_rate': [('name', 'text'), ('rate_value', 'number'), Ref('agency', 'tax_agency'), ('active', 'bool')],
    'transfer': [Ref('from_account', 'account'), Ref('to_account', 'account'), ('txn_date', 'date'), ('amount', 'amount'), ('currency', 'code')],
    'bill': [Ref('vendor', 'vendor'), Ref('ap_account', 'account'), ('doc_number', 'code'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code'), ('due_date', 'date'), ('balance', 'amount')],
    'credit_memo': [Ref('customer', 'customer'), ('doc_number', 'code'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code'), ('remaining_credit', 'amount')],
    'estimate': [Ref('customer', 'customer'), ('doc_number', 'code'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code'), ('expiration_date', 'date'), ('txn_status', 'text')],
    'purchase': [Ref('account', 'account'), ('entity_source_id', 'code'), ('entity_type', 'code'), ('payment_type', 'text'), ('doc_number', 'code'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code')],
    'purchase_order': [Ref('vendor', 'vendor'), Ref('ap_account', 'account'), ('doc_number', 'code'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code'), ('due_date', 'date'), ('po_status', 'text')],
    'refund_receipt': [Ref('customer', 'customer'), ('doc_number', 'code'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code'), Ref('deposit_to_account', 'account')],
    'sales_receipt': [Ref('customer', 'customer'), ('doc_number', 'code'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code'), Ref('deposit_to_account', 'account')],
    'time_activity': [Ref('employee', 'employee'), Ref('customer', 'customer'), Ref('item', 'item'), ('name_of', 'text'), ('txn_date', 'date'), ('hours', 'int'), ('minutes', 'int'), ('billable_status', 'text'), ('hourly_rate', 'number')],
    'vendor_credit': [Ref('vendor', 'vendor'), Ref('ap_account', 'account'), ('doc_number', 'code'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code'), ('balance', 'amount')],
    'bill_payment': [Ref('vendor', 'vendor'), ('doc_number', 'code'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code'), ('pay_type', 'text')],
    'payment': [Ref('customer', 'customer'), ('txn_date', 'date'), ('total_amt', 'amount'), ('unapplied_amt', 'amount'), ('currency', 'code'), Ref('deposit_to_account', 'account'), Ref('payment_method', 'payment_method')],
    'deposit': [Ref('deposit_to_account', 'account'), ('txn_date', 'date'), ('total_amt', 'amount'), ('currency', 'code')],
}


def _columns(table, declared):
    columns = [
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('company_source_id', sa.String(length=64), nullable=False),
        sa.Column('source_id', sa.String(length=64), nullable=False),
        sa.Column('sync_token', sa.Integer(), nullable=True),
        sa.Column('raw_data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
        sa.Column('source_created_at', dashboard.types.UTCDateTime(), nullable=True),
        sa.Column('source_updated_at', dashboard.types.UTCDateTime(), nullable=True),
        sa.Column('is_deleted', sa.Boolean(), nullable=False),
        sa.Column('deleted_at', dashboard.types.UTCDateTime(), nullable=True),
        sa.Column('created_at', dashboard.types.UTCDateTime(), nullable=False),
        sa.Column('updated_at', dashboard.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['company_source_id'], ['company.source_id'],
                                name=op.f(f'fk_{table}_company_source_id_company'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')),
        sa.UniqueConstraint('company_source_id', 'source_id', name=op.f(f'uq_{table}_company_source_id_source_id')),
    ]
    for column in declared:
        if isinstance(column, Ref):
            fk = f'{column.name}_id'
            columns += [
                sa.Column(f'{column.name}_source_id', sa.String(length=64), nullable=True),
                sa.Column(fk, sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
                sa.ForeignKeyConstraint([fk], [f'{column.target}.id'], name=op.f(f'fk_{table}_{fk}_{column.target}'),
                                        ondelete='SET NULL'),
            ]
        else:
            name, kind = column
            columns.append(sa.Column(name, TYPES[kind](), nullable=name != 'active'))
    return columns


def upgrade():
    for table, declared in TABLES.items():
        op.create_table(table, *_columns(table, declared))
        for column in declared:
            if isinstance(column, Ref):
                op.create_index(f'ix_{table}_company_{column.name}_source_id', table,
                                ['company_source_id', f'{column.name}_source_id'])

    op.create_table(
        'parity_check',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('company_source_id', sa.String(length=64), nullable=False),
        sa.Column('object_type', sa.String(length=32), nullable=False),
        sa.Column('checked_at', dashboard.types.UTCDateTime(), nullable=False),
        sa.Column('source_count', sa.Integer(), nullable=False),
        sa.Column('local_count', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['company_source_id'], ['company.source_id'],
                                name=op.f('fk_parity_check_company_source_id_company'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_parity_check')),
    )
    op.create_index('ix_parity_check_company_checked', 'parity_check', ['company_source_id', 'checked_at'])

    with op.batch_alter_table('customer') as batch_op:
        batch_op.add_column(sa.Column('company_name', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('email', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('balance', sa.Numeric(precision=18, scale=2), nullable=True))
        batch_op.add_column(sa.Column('currency', sa.String(length=64), nullable=True))
    with op.batch_alter_table('invoice') as batch_op:
        batch_op.add_column(sa.Column('due_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('balance', sa.Numeric(precision=18, scale=2), nullable=True))
    _txn_date_to_date()
    with op.batch_alter_table('sync_state') as batch_op:
        batch_op.add_column(sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('parity_checked_at', dashboard.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('parity_source_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('parity_local_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('parity_drifts', sa.Integer(), server_default=sa.text('0'), nullable=False))


def _txn_date_to_date():
    """Make invoice.txn_date a date; a text that is no date becomes NULL (raw_data keeps it)."""
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("CREATE FUNCTION pg_temp.qbosync_to_date(value text) RETURNS date AS $$ "
                   "BEGIN RETURN value::date; EXCEPTION WHEN others THEN RETURN NULL; END $$ LANGUAGE plpgsql")
        op.execute("ALTER TABLE invoice ALTER COLUMN txn_date TYPE date USING pg_temp.qbosync_to_date(txn_date)")
        return
    # SQLite keeps dates as ISO text: the values stay, those that are no date are cleared.
    op.execute("UPDATE invoice SET txn_date = NULL WHERE txn_date IS NOT NULL AND date(txn_date) IS NOT txn_date")
    with op.batch_alter_table('invoice') as batch_op:
        batch_op.alter_column('txn_date', existing_type=sa.String(length=10), type_=sa.Date())


def downgrade():
    with op.batch_alter_table('sync_state') as batch_op:
        for column in ('parity_drifts', 'parity_local_count', 'parity_source_count', 'parity_checked_at', 'enabled'):
            batch_op.drop_column(column)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE invoice ALTER COLUMN txn_date TYPE varchar(10) USING to_char(txn_date, 'YYYY-MM-DD')")
    with op.batch_alter_table('invoice') as batch_op:
        if op.get_bind().dialect.name != 'postgresql':
            batch_op.alter_column('txn_date', existing_type=sa.Date(), type_=sa.String(length=10))
        batch_op.drop_column('balance')
        batch_op.drop_column('due_date')
    with op.batch_alter_table('customer') as batch_op:
        for column in ('currency', 'balance', 'email', 'company_name'):
            batch_op.drop_column(column)
    op.drop_index('ix_parity_check_company_checked', table_name='parity_check')
    op.drop_table('parity_check')
    for table in reversed(list(TABLES)):
        op.drop_table(table)

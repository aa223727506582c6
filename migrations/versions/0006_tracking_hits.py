"""tracking: repeated hits counted on one row

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:40:00

A tracking row now stands for every hit of one delivery, kind, link and
machine flag within one window (`bucket`), with a hit counter and the first
and last time. Existing rows keep one event each: `hits` 1, `last_at` their
`created_at`, `bucket` NULL (never collides).

Only columns are added and indexes changed: rebuilding the table (SQLite's
batch mode) would drop the reach triggers on it and break the one on
deliveries that reads it.
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# SQLite adds a NOT NULL column only with a constant default; every row gets
# its real value right after, and the application always writes one.
_PLACEHOLDER_TIME = '1970-01-01 00:00:00.000000'


def upgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.add_column('tracking_events', sa.Column('hits', sa.Integer(), server_default='1', nullable=False))
    op.add_column('tracking_events', sa.Column('bucket', sa.BigInteger(), nullable=True))
    if sqlite:
        op.add_column('tracking_events', sa.Column('last_at', sa.DateTime(timezone=True), nullable=False,
                                                   server_default=_PLACEHOLDER_TIME))
    else:
        op.add_column('tracking_events', sa.Column('last_at', sa.DateTime(timezone=True), nullable=True))
    op.execute('UPDATE tracking_events SET last_at = created_at')
    if not sqlite:
        op.alter_column('tracking_events', 'last_at', nullable=False)

    # The hit index leads with delivery_id and covers its lookups; the
    # district index is covered by (district_key, created_at). Fewer indexes,
    # cheaper writes on the pixel's path.
    op.drop_index('ix_tracking_events_delivery_id', 'tracking_events')
    op.drop_index('ix_tracking_events_district_key', 'tracking_events')
    op.create_index('uq_tracking_events_hit', 'tracking_events',
                    ['delivery_id', 'kind', sa.text('coalesce(link_id, 0)'), 'machine', 'bucket'], unique=True)


def downgrade():
    op.drop_index('uq_tracking_events_hit', 'tracking_events')
    op.create_index('ix_tracking_events_district_key', 'tracking_events', ['district_key'])
    op.create_index('ix_tracking_events_delivery_id', 'tracking_events', ['delivery_id'])
    # Dropping columns rebuilds the table on SQLite, which the reach triggers
    # do not survive: take them down first and put them back after.
    from reach import triggers

    dialect = op.get_bind().dialect.name
    for statement in triggers.drop_statements(dialect):
        op.execute(statement)
    with op.batch_alter_table('tracking_events', schema=None) as batch_op:
        batch_op.drop_column('last_at')
        batch_op.drop_column('bucket')
        batch_op.drop_column('hits')
    for statement in triggers.create_statements(dialect):
        op.execute(statement)

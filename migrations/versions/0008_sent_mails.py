"""pipeline: a journal of sent mails, appended per mail and applied per batch

Recording a sent mail was an UPDATE of its row (status, sent_at,
message_id with their indexes, and the reach trigger) committed per mail;
the sending jobs now append one small row here instead and apply them to
their mail rows at the end of each batch (`core.pipeline`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:50:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sent_mails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('table_name', sa.String(length=40), nullable=False),
    sa.Column('row_id', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sent_mails'))
    )
    with op.batch_alter_table('sent_mails', schema=None) as batch_op:
        batch_op.create_index('ix_sent_mails_row', ['table_name', 'row_id'], unique=False)


def downgrade():
    # Apply what is still in the journal before it goes.
    for table in ('deliveries', 'event_mails'):
        op.execute(
            f"UPDATE {table} SET status = 'sent', attempts = attempts + 1, smtp_reply = '250', claimed_until = NULL, "
            f"sent_at = (SELECT s.sent_at FROM sent_mails s WHERE s.table_name = '{table}' AND s.row_id = {table}.id), "
            f"message_id = (SELECT s.message_id FROM sent_mails s WHERE s.table_name = '{table}' AND s.row_id = {table}.id) "
            f"WHERE status = 'sending' AND id IN (SELECT row_id FROM sent_mails WHERE table_name = '{table}')"
        )
    with op.batch_alter_table('sent_mails', schema=None) as batch_op:
        batch_op.drop_index('ix_sent_mails_row')

    op.drop_table('sent_mails')

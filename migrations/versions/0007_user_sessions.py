"""accounts: sign-in sessions kept on the server; users.session_version goes

A row per sign-in (only the SHA-256 of its key) replaces the version number
that the session cookie used to carry: logout, a password change and
deactivation delete rows, so a copied cookie signs nobody in afterwards.

The column is dropped with a plain ALTER TABLE (SQLite ≥ 3.35 has DROP
COLUMN): batch mode would copy and drop `users`, and with foreign keys on
that DROP would cascade into api_tokens and user_districts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:45:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('user_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_agent', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_user_sessions_key_hash'))
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_sessions_user_id'), ['user_id'], unique=False)

    op.drop_column('users', 'session_version')


def downgrade():
    # Every existing cookie carried no version; they end, as after a restart of the old code.
    op.add_column('users', sa.Column('session_version', sa.Integer(), nullable=False, server_default='1'))
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_sessions_user_id'))

    op.drop_table('user_sessions')

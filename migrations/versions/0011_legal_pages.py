"""legal pages: a small table of settings admins change at run time

Impressum, Datenschutzerklärung and Erklärung zur Barrierefreiheit, each a
URL or a text kept in the service (`legal.services`); in the database so
that every web and worker process sees the same.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 22:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_settings'))
    )


def downgrade():
    op.drop_table('settings')

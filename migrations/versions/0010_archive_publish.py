"""newsletter: published in the public archive, or not

Until now every sent newsletter was public. Publishing is the coordinator's
choice per newsletter, off by default; newsletters sent before this revision
were public, so they stay published (nobody is surprised by a vanished
archive, and a coordinator can switch each one off).

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01 22:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_in_archive', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE newsletters SET published_in_archive = TRUE WHERE status IN ('sending', 'paused', 'sent')")


def downgrade():
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.drop_column('published_in_archive')

"""reach: touches, rollup, dirty marks and their triggers; contacts; map outlines

Also: an erased subscriber's sent event invitations stay as anonymous reach
(subscriber_id SET NULL instead of CASCADE), and the raw tables get the
(district, time) indexes the rollup's refresh reads by.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _triggers():
    # Imported here: the trigger DDL is the application's, kept in one place.
    from reach import triggers

    return triggers


def upgrade():
    op.create_table('outlines',
    sa.Column('key', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('district_key', sa.String(length=5), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('geometry', sa.Text(), nullable=False),
    sa.CheckConstraint("kind IN ('district', 'municipality', 'area')", name=op.f('ck_outlines_kind')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_outlines'))
    )
    with op.batch_alter_table('outlines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outlines_district_key'), ['district_key'], unique=False)

    op.create_table('reach_touches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('district_key', sa.String(length=5), nullable=False),
    sa.Column('municipality_ags', sa.String(length=8), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('channel', sa.SmallInteger(), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('person', sa.String(length=24), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reach_touches'))
    )
    with op.batch_alter_table('reach_touches', schema=None) as batch_op:
        batch_op.create_index('ix_reach_touches_district_day', ['district_key', 'day'], unique=False)
        batch_op.create_index('ix_reach_touches_municipality', ['municipality_ags', 'level', 'day'], unique=False)
        batch_op.create_index('ix_reach_touches_offer', ['channel', 'offer_id'], unique=False)

    op.create_table('reach_rollup',
    sa.Column('tier', sa.SmallInteger(), nullable=False),
    sa.Column('start', sa.Date(), nullable=False),
    sa.Column('municipality_ags', sa.String(length=8), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('channel', sa.SmallInteger(), nullable=False),
    sa.Column('district_key', sa.String(length=5), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('touches', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tier', 'start', 'municipality_ags', 'level', 'channel', name=op.f('pk_reach_rollup'))
    )
    with op.batch_alter_table('reach_rollup', schema=None) as batch_op:
        batch_op.create_index('ix_reach_rollup_district', ['district_key', 'tier', 'start'], unique=False)

    op.create_table('reach_bits',
    sa.Column('municipality_ags', sa.String(length=8), nullable=False),
    sa.Column('district_key', sa.String(length=5), nullable=False),
    sa.Column('bit', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('municipality_ags', name=op.f('pk_reach_bits'))
    )
    with op.batch_alter_table('reach_bits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reach_bits_district_key'), ['district_key'], unique=False)

    op.create_table('reach_district_rollup',
    sa.Column('tier', sa.SmallInteger(), nullable=False),
    sa.Column('start', sa.Date(), nullable=False),
    sa.Column('district_key', sa.String(length=5), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('channel', sa.SmallInteger(), nullable=False),
    sa.Column('mask', sa.BigInteger(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('tier', 'start', 'district_key', 'level', 'channel', name=op.f('pk_reach_district_rollup'))
    )
    op.create_table('reach_dirty',
    sa.Column('district_key', sa.String(length=5), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('district_key', 'day', name=op.f('pk_reach_dirty'))
    )
    op.create_table('reach_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rebuilt_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reach_state'))
    )

    op.create_table('contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('district_key', sa.String(length=5), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('vor_ort', 'telefon', 'video', 'email', 'veranstaltung_extern', 'sonstiges')", name=op.f('ck_contacts_kind')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_contacts_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['district_key'], ['districts.key'], name=op.f('fk_contacts_district_key_districts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_date'), ['date'], unique=False)
        batch_op.create_index(batch_op.f('ix_contacts_district_key'), ['district_key'], unique=False)

    op.create_table('contact_municipalities',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('municipality_ags', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_municipalities_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['municipality_ags'], ['municipalities.ags'], name=op.f('fk_contact_municipalities_municipality_ags_municipalities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', 'municipality_ags', name=op.f('pk_contact_municipalities'))
    )
    with op.batch_alter_table('contact_municipalities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_municipalities_municipality_ags'), ['municipality_ags'], unique=False)

    op.create_table('contact_topics',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('topic_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_topics_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['topic_id'], ['topics.id'], name=op.f('fk_contact_topics_topic_id_topics'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', 'topic_id', name=op.f('pk_contact_topics'))
    )

    # An erased subscriber's sent invitations stay, without them.
    with op.batch_alter_table('event_mails', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_event_mails_subscriber_id_subscribers'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_event_mails_subscriber_id_subscribers'), 'subscribers',
                                    ['subscriber_id'], ['id'], ondelete='SET NULL')
        batch_op.drop_constraint(op.f('ck_event_mails_recipient'), type_='check')
        batch_op.create_check_constraint(
            'recipient', "registration_id IS NOT NULL OR subscriber_id IS NOT NULL OR status = 'sent'")

    # What the rollup's refresh reads by: a district's rows in a time window.
    op.create_index('ix_deliveries_district_sent', 'deliveries', ['district_key', 'sent_at'])
    op.create_index('ix_tracking_events_district_created', 'tracking_events', ['district_key', 'created_at'])
    op.create_index('ix_event_mails_district_sent', 'event_mails', ['district_key', 'sent_at'])
    op.create_index('ix_event_slots_district_starts', 'event_slots', ['district_key', 'starts_at'])
    op.create_index('ix_subscribers_status_municipality', 'subscribers', ['status', 'municipality_ags'])

    dialect = op.get_bind().dialect.name
    for statement in _triggers().create_statements(dialect):
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for statement in _triggers().drop_statements(dialect):
        op.execute(statement)
    op.drop_index('ix_subscribers_status_municipality', 'subscribers')
    op.drop_index('ix_event_slots_district_starts', 'event_slots')
    op.drop_index('ix_event_mails_district_sent', 'event_mails')
    op.drop_index('ix_tracking_events_district_created', 'tracking_events')
    op.drop_index('ix_deliveries_district_sent', 'deliveries')
    with op.batch_alter_table('event_mails', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_event_mails_recipient'), type_='check')
        batch_op.create_check_constraint('recipient', 'registration_id IS NOT NULL OR subscriber_id IS NOT NULL')
        batch_op.drop_constraint(op.f('fk_event_mails_subscriber_id_subscribers'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_event_mails_subscriber_id_subscribers'), 'subscribers',
                                    ['subscriber_id'], ['id'], ondelete='CASCADE')
    op.drop_table('contact_topics')
    op.drop_table('contact_municipalities')
    op.drop_table('contacts')
    op.drop_table('reach_state')
    op.drop_table('reach_dirty')
    op.drop_table('reach_district_rollup')
    op.drop_table('reach_bits')
    op.drop_table('reach_rollup')
    op.drop_table('reach_touches')
    op.drop_table('outlines')

"""ticket workflow: statuses, assignment, SLA deadlines, transcript search, texts per event,
messages added by repeat callers, SMS opt-outs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# The same expression as callbacks/tickets/ticket.py SEARCH_EXPRESSION (kept here as written
# at this revision: a migration must not change when the code does).
SEARCH_EXPRESSION = (
    "to_tsvector(CASE language WHEN 'en' THEN 'english'::regconfig "
    "WHEN 'de' THEN 'german'::regconfig WHEN 'ru' THEN 'russian'::regconfig "
    "ELSE 'simple'::regconfig END, "
    "coalesce(transcript, '') || ' ' || coalesce(added_transcripts, ''))"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=16),
                              type_=sa.String(length=24), existing_nullable=False)
        batch_op.add_column(sa.Column('assigned_agent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('added_transcripts', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.create_foreign_key(batch_op.f('fk_tickets_assigned_agent_id_agents'), 'agents',
                                    ['assigned_agent_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_tickets_assigned_agent_id'), ['assigned_agent_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_created_at'), ['created_at'], unique=False)
    op.execute("UPDATE tickets SET status = 'new' WHERE status = 'open'")
    op.execute("UPDATE tickets SET status = 'waiting_for_caller' WHERE status = 'unreachable'")
    if postgres:
        # Generated from the transcripts in the ticket's language; SQLite searches with LIKE.
        op.add_column('tickets', sa.Column('search_vector', postgresql.TSVECTOR(),
                                           sa.Computed(SEARCH_EXPRESSION, persisted=True),
                                           nullable=True))
        op.create_index('ix_tickets_search_vector', 'tickets', ['search_vector'], unique=False,
                        postgresql_using='gin')

    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('about_event_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('voicemail_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_ticket_events_about_event_id_ticket_events'),
                                    'ticket_events', ['about_event_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_ticket_events_voicemail_id_voicemails'),
                                    'voicemails', ['voicemail_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_ticket_events_about_event_id'), ['about_event_id'],
                              unique=False)

    with op.batch_alter_table('voicemails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ticket_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_voicemails_ticket_id_tickets'), 'tickets',
                                    ['ticket_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_voicemails_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('sms_opt_outs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('keyword', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_opt_outs')),
    sa.UniqueConstraint('number', name=op.f('uq_sms_opt_outs_number'))
    )


def downgrade() -> None:
    op.drop_table('sms_opt_outs')

    with op.batch_alter_table('voicemails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voicemails_ticket_id'))
        batch_op.drop_constraint(batch_op.f('fk_voicemails_ticket_id_tickets'),
                                 type_='foreignkey')
        batch_op.drop_column('ticket_id')

    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_events_about_event_id'))
        batch_op.drop_constraint(batch_op.f('fk_ticket_events_voicemail_id_voicemails'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_ticket_events_about_event_id_ticket_events'),
                                 type_='foreignkey')
        batch_op.drop_column('voicemail_id')
        batch_op.drop_column('about_event_id')
        batch_op.drop_column('notify')

    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_tickets_search_vector', table_name='tickets',
                      postgresql_using='gin')
        op.drop_column('tickets', 'search_vector')
    op.execute("UPDATE tickets SET status = 'unreachable' WHERE status = 'waiting_for_caller'")
    op.execute("UPDATE tickets SET status = 'resolved' WHERE status = 'closed'")
    op.execute("UPDATE tickets SET status = 'open' "
               "WHERE status IN ('new', 'assigned', 'in_progress')")
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_created_at'))
        batch_op.drop_index(batch_op.f('ix_tickets_due_at'))
        batch_op.drop_index(batch_op.f('ix_tickets_assigned_agent_id'))
        batch_op.drop_constraint(batch_op.f('fk_tickets_assigned_agent_id_agents'),
                                 type_='foreignkey')
        batch_op.drop_column('added_transcripts')
        batch_op.drop_column('due_at')
        batch_op.drop_column('assigned_agent_id')
        batch_op.alter_column('status', existing_type=sa.String(length=24),
                              type_=sa.String(length=16), existing_nullable=False)

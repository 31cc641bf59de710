"""satisfaction survey: answers by keypad and SMS, and the survey texts sent

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 19:16:21.514817
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('survey_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('call_sid', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('question', sa.String(length=16), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('message_sid', sa.String(length=64), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel IN ('keypad', 'sms')", name=op.f('ck_survey_answers_channel')),
    sa.CheckConstraint('score BETWEEN 1 AND 5', name=op.f('ck_survey_answers_score_range')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_survey_answers_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_survey_answers_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_answers')),
    sa.UniqueConstraint('subject', 'channel', 'question', name=op.f('uq_survey_answers_subject_channel_question'))
    )
    with op.batch_alter_table('survey_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_answers_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_answers_answered_at'), ['answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_answers_message_sid'), ['message_sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_answers_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('survey_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('call_sid', sa.String(length=64), nullable=False),
    sa.Column('caller', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message_sid', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_survey_invitations_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['callback_requests.id'], name=op.f('fk_survey_invitations_request_id_callback_requests'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_survey_invitations_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_invitations')),
    sa.UniqueConstraint('subject', name=op.f('uq_survey_invitations_subject'))
    )
    with op.batch_alter_table('survey_invitations', schema=None) as batch_op:
        batch_op.create_index('ix_survey_invitations_caller_sent', ['caller', 'sent_at'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('survey_invitations', schema=None) as batch_op:
        batch_op.drop_index('ix_survey_invitations_caller_sent')

    op.drop_table('survey_invitations')
    with op.batch_alter_table('survey_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_answers_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_survey_answers_message_sid'))
        batch_op.drop_index(batch_op.f('ix_survey_answers_answered_at'))
        batch_op.drop_index(batch_op.f('ix_survey_answers_agent_id'))

    op.drop_table('survey_answers')


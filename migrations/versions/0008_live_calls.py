"""live calls waiting in line, the rings of agents' phones for them, and the matching indexes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

WAITING = "status = 'waiting'"
PENDING = "status = 'pending'"
LIVE_OFFER = "stage IN ('ringing_agent', 'bridging', 'talking')"


def upgrade() -> None:
    op.create_table('live_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=False),
    sa.Column('caller', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.String(length=8), nullable=False),
    sa.Column('reasons', sa.Text(), nullable=False),
    sa.Column('flow_version_id', sa.Integer(), nullable=True),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('queue_name', sa.String(length=64), nullable=False),
    sa.Column('queue_sid', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('overflow_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('announced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('wait_seconds', sa.Integer(), nullable=True),
    sa.Column('offers', sa.Integer(), nullable=False),
    sa.Column('outcome_detail', sa.Text(), nullable=False),
    sa.Column('callback_request_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_live_calls_agent_id_agents')),
    sa.ForeignKeyConstraint(['callback_request_id'], ['callback_requests.id'], name=op.f('fk_live_calls_callback_request_id_callback_requests')),
    sa.ForeignKeyConstraint(['flow_version_id'], ['flow_versions.id'], name=op.f('fk_live_calls_flow_version_id_flow_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_calls')),
    sa.UniqueConstraint('call_sid', name=op.f('uq_live_calls_call_sid'))
    )
    with op.batch_alter_table('live_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_calls_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_calls_status'), ['status'], unique=False)
        batch_op.create_index('ix_live_calls_waiting_language_due', ['language', 'due_at', 'id'], unique=False, postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))
        batch_op.create_index('ix_live_calls_waiting_topic_due', ['language', 'category', 'due_at', 'id'], unique=False, postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))

    op.create_table('live_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('live_call_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('agent_call_sid', sa.String(length=64), nullable=True),
    sa.Column('stage', sa.String(length=24), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_live_offers_agent_id_agents')),
    sa.ForeignKeyConstraint(['live_call_id'], ['live_calls.id'], name=op.f('fk_live_offers_live_call_id_live_calls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_offers')),
    sa.UniqueConstraint('agent_call_sid', name=op.f('uq_live_offers_agent_call_sid'))
    )
    with op.batch_alter_table('live_offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_offers_live_call_id'), ['live_call_id'], unique=False)
        batch_op.create_index('uq_live_offers_live_call', ['live_call_id'], unique=True, postgresql_where=sa.text(LIVE_OFFER), sqlite_where=sa.text(LIVE_OFFER))
        batch_op.create_index('uq_live_offers_agent', ['agent_id'], unique=True, postgresql_where=sa.text(LIVE_OFFER), sqlite_where=sa.text(LIVE_OFFER))

    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.create_index('ix_callback_requests_pending_language_due', ['language', 'due_at', 'id'], unique=False, postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))
        batch_op.create_index('ix_callback_requests_pending_topic_due', ['language', 'category', 'due_at', 'id'], unique=False, postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))


def downgrade() -> None:
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_callback_requests_pending_topic_due', postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))
        batch_op.drop_index('ix_callback_requests_pending_language_due', postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))

    with op.batch_alter_table('live_offers', schema=None) as batch_op:
        batch_op.drop_index('uq_live_offers_agent', postgresql_where=sa.text(LIVE_OFFER), sqlite_where=sa.text(LIVE_OFFER))
        batch_op.drop_index('uq_live_offers_live_call', postgresql_where=sa.text(LIVE_OFFER), sqlite_where=sa.text(LIVE_OFFER))
        batch_op.drop_index(batch_op.f('ix_live_offers_live_call_id'))
    op.drop_table('live_offers')

    with op.batch_alter_table('live_calls', schema=None) as batch_op:
        batch_op.drop_index('ix_live_calls_waiting_topic_due', postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))
        batch_op.drop_index('ix_live_calls_waiting_language_due', postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))
        batch_op.drop_index(batch_op.f('ix_live_calls_status'))
        batch_op.drop_index(batch_op.f('ix_live_calls_agent_id'))
    op.drop_table('live_calls')

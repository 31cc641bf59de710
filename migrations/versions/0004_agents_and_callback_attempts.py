"""agents and callback attempts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:10:06.733906
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=128), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('phone', sa.String(length=64), nullable=False),
    sa.Column('availability', sa.String(length=16), nullable=False),
    sa.Column('availability_since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dial_mode', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('api_token_hash', sa.String(length=64), nullable=False, server_default=''),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    sa.UniqueConstraint('username', name=op.f('uq_agents_username'))
    )
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agents_availability'), ['availability'], unique=False)
        batch_op.create_index(batch_op.f('ix_agents_api_token_hash'), ['api_token_hash'], unique=False)

    op.create_table('callback_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=24), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('agent_call_sid', sa.String(length=64), nullable=True),
    sa.Column('caller_call_sid', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('talk_seconds', sa.Integer(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_callback_attempts_agent_id_agents')),
    sa.ForeignKeyConstraint(['request_id'], ['callback_requests.id'], name=op.f('fk_callback_attempts_request_id_callback_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_attempts')),
    sa.UniqueConstraint('agent_call_sid', name=op.f('uq_callback_attempts_agent_call_sid'))
    )
    with op.batch_alter_table('callback_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callback_attempts_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_attempts_request_id'), ['request_id'], unique=False)

    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assigned_agent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('window', sa.String(length=32), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('dial_number', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_callback_requests_assigned_agent_id_agents'), 'agents', ['assigned_agent_id'], ['id'])




def downgrade() -> None:

    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_callback_requests_assigned_agent_id_agents'), type_='foreignkey')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('dial_number')
        batch_op.drop_column('window')
        batch_op.drop_column('assigned_agent_id')

    with op.batch_alter_table('callback_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callback_attempts_request_id'))
        batch_op.drop_index(batch_op.f('ix_callback_attempts_agent_id'))

    op.drop_table('callback_attempts')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agents_api_token_hash'))
        batch_op.drop_index(batch_op.f('ix_agents_availability'))

    op.drop_table('agents')


"""agents' session versions and the account history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False,
                                      server_default='0'))

    op.create_table('agent_account_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_account_events_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_account_events'))
    )
    with op.batch_alter_table('agent_account_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_account_events_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agent_account_events_at'), ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('agent_account_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_account_events_at'))
        batch_op.drop_index(batch_op.f('ix_agent_account_events_agent_id'))
    op.drop_table('agent_account_events')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('session_version')

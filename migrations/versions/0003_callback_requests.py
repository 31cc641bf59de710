"""callback requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:11:01.277191
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('callback_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('caller', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('priority', sa.String(length=8), nullable=False),
    sa.Column('reasons', sa.Text(), nullable=False),
    sa.Column('first_call_sid', sa.String(length=64), nullable=False),
    sa.Column('last_call_sid', sa.String(length=64), nullable=False, server_default=''),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('contacts', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('first_contact_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('available_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_callback_requests_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_requests'))
    )
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.create_index('ix_callback_requests_pending_due', ['due_at', 'id'], unique=False, postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
        batch_op.create_index(batch_op.f('ix_callback_requests_status'), ['status'], unique=False)
        batch_op.create_index('uq_callback_requests_open_problem', ['caller', 'category'], unique=True, postgresql_where=sa.text("status IN ('pending', 'claimed')"), sqlite_where=sa.text("status IN ('pending', 'claimed')"))

    


def downgrade() -> None:
    
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_callback_requests_open_problem', postgresql_where=sa.text("status IN ('pending', 'claimed')"), sqlite_where=sa.text("status IN ('pending', 'claimed')"))
        batch_op.drop_index(batch_op.f('ix_callback_requests_status'))
        batch_op.drop_index('ix_callback_requests_pending_due', postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))

    op.drop_table('callback_requests')
    

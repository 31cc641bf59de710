"""delivery to the company's ticket system: outbox, streams and reported status changes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delivery_inbound',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connector', sa.String(length=32), nullable=False),
    sa.Column('delivery_id', sa.String(length=128), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('remote_state', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_delivery_inbound_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_inbound')),
    sa.UniqueConstraint('connector', 'delivery_id', name=op.f('uq_delivery_inbound_connector_delivery_id'))
    )
    with op.batch_alter_table('delivery_inbound', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_inbound_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('delivery_streams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('connector', sa.String(length=32), nullable=False),
    sa.Column('remote_id', sa.String(length=64), nullable=True),
    sa.Column('remote_number', sa.String(length=64), nullable=True),
    sa.Column('first_event_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_delivery_streams_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_streams')),
    sa.UniqueConstraint('ticket_id', 'connector', name=op.f('uq_delivery_streams_ticket_id_connector'))
    )
    with op.batch_alter_table('delivery_streams', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_streams_remote', ['connector', 'remote_id'], unique=False)

    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('connector', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('idempotency_key', sa.String(length=96), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=True),
    sa.Column('remote_ref', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name=op.f('ck_deliveries_status')),
    sa.ForeignKeyConstraint(['event_id'], ['ticket_events.id'], name=op.f('fk_deliveries_event_id_ticket_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_deliveries_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('event_id', 'connector', name=op.f('uq_deliveries_event_id_connector')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_deliveries_idempotency_key'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_status'), ['status'], unique=False)
        batch_op.create_index('ix_deliveries_stream', ['connector', 'ticket_id', 'status', 'event_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_stream')
        batch_op.drop_index(batch_op.f('ix_deliveries_status'))

    op.drop_table('deliveries')
    with op.batch_alter_table('delivery_streams', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_streams_remote')

    op.drop_table('delivery_streams')
    with op.batch_alter_table('delivery_inbound', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_inbound_ticket_id'))

    op.drop_table('delivery_inbound')

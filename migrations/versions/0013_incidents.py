"""outage incidents: linked tickets and callbacks, subscribers, one notice per number

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-14 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_by', sa.String(length=128), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_by', sa.String(length=128), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=False),
    sa.Column('announce', sa.Boolean(), nullable=False),
    sa.Column('announcement_json', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f('ck_incidents_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_status'), ['status'], unique=False)

    op.create_table('incident_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('message_sid', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'skipped', 'failed')", name=op.f('ck_incident_notices_status')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_notices_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_notices')),
    sa.UniqueConstraint('incident_id', 'phone', name=op.f('uq_incident_notices_incident_id_phone'))
    )
    with op.batch_alter_table('incident_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_notices_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_notices_status'), ['status'], unique=False)

    op.create_table('incident_subscribers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=False),
    sa.Column('subscribed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_subscribers_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_subscribers')),
    sa.UniqueConstraint('incident_id', 'phone', name=op.f('uq_incident_subscribers_incident_id_phone'))
    )
    with op.batch_alter_table('incident_subscribers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_subscribers_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('linked_by', sa.String(length=128), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_tickets_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_incident_tickets_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_tickets')),
    sa.UniqueConstraint('incident_id', 'ticket_id', name=op.f('uq_incident_tickets_incident_id_ticket_id'))
    )
    with op.batch_alter_table('incident_tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_tickets_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_tickets_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('incident_callbacks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('callback_request_id', sa.Integer(), nullable=False),
    sa.Column('linked_by', sa.String(length=128), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['callback_request_id'], ['callback_requests.id'], name=op.f('fk_incident_callbacks_callback_request_id_callback_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_callbacks_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_callbacks')),
    sa.UniqueConstraint('incident_id', 'callback_request_id', name=op.f('uq_incident_callbacks_incident_id_callback_request_id'))
    )
    with op.batch_alter_table('incident_callbacks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_callbacks_callback_request_id'), ['callback_request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_callbacks_incident_id'), ['incident_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('incident_callbacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_callbacks_incident_id'))
        batch_op.drop_index(batch_op.f('ix_incident_callbacks_callback_request_id'))

    op.drop_table('incident_callbacks')
    with op.batch_alter_table('incident_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_tickets_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_incident_tickets_incident_id'))

    op.drop_table('incident_tickets')
    with op.batch_alter_table('incident_subscribers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_subscribers_incident_id'))

    op.drop_table('incident_subscribers')
    with op.batch_alter_table('incident_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_notices_status'))
        batch_op.drop_index(batch_op.f('ix_incident_notices_incident_id'))

    op.drop_table('incident_notices')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_status'))

    op.drop_table('incidents')

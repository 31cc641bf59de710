"""flows, calls and voicemails

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 15:50:55.661926
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('call_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('input', sa.Text(), nullable=True),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_steps')),
    sa.UniqueConstraint('call_sid', 'seq', name=op.f('uq_call_steps_call_sid_seq'))
    )
    op.create_table('flow_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('compiled_json', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_versions')),
    sa.UniqueConstraint('name', 'number', name=op.f('uq_flow_versions_name_number')),
    sa.UniqueConstraint('name', 'sha256', name=op.f('uq_flow_versions_name_sha256'))
    )
    with op.batch_alter_table('flow_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flow_versions_name'), ['name'], unique=False)

    op.create_table('calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=False),
    sa.Column('caller', sa.String(length=64), nullable=False),
    sa.Column('called', sa.String(length=64), nullable=False),
    sa.Column('flow_version_id', sa.Integer(), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('last_node', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['flow_version_id'], ['flow_versions.id'], name=op.f('fk_calls_flow_version_id_flow_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calls')),
    sa.UniqueConstraint('call_sid', name=op.f('uq_calls_call_sid'))
    )
    op.create_table('flow_publications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['flow_versions.id'], name=op.f('fk_flow_publications_version_id_flow_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_publications'))
    )
    with op.batch_alter_table('flow_publications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flow_publications_name'), ['name'], unique=False)

    op.create_table('published_flows',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['flow_versions.id'], name=op.f('fk_published_flows_version_id_flow_versions')),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_published_flows'))
    )
    op.create_table('voicemails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_sid', sa.String(length=64), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=False),
    sa.Column('flow_version_id', sa.Integer(), nullable=True),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('recording_url', sa.String(length=512), nullable=False),
    sa.Column('duration_seconds', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['flow_version_id'], ['flow_versions.id'], name=op.f('fk_voicemails_flow_version_id_flow_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voicemails')),
    sa.UniqueConstraint('recording_sid', name=op.f('uq_voicemails_recording_sid'))
    )
    with op.batch_alter_table('voicemails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voicemails_call_sid'), ['call_sid'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('voicemails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voicemails_call_sid'))

    op.drop_table('voicemails')
    op.drop_table('published_flows')
    with op.batch_alter_table('flow_publications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flow_publications_name'))

    op.drop_table('flow_publications')
    op.drop_table('calls')
    with op.batch_alter_table('flow_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flow_versions_name'))

    op.drop_table('flow_versions')
    op.drop_table('call_steps')


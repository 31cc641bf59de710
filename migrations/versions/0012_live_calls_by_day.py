"""live calls found by the day they joined the line (wallboard and reports)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

from alembic import op


revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('live_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_calls_entered_at'), ['entered_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('live_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_live_calls_entered_at'))

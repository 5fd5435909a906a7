"""replay jobs run by the worker

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 17:37:10.837875
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('replay', sa.Column('status', sa.Text(), server_default='pending', nullable=False), schema='ingest')
    # Replays recorded before this revision ran inside their request: they are finished.
    op.execute("UPDATE ingest.replay SET status = 'done'")
    op.alter_column('replay', 'events', server_default='0', schema='ingest')
    op.alter_column('replay', 'messages', server_default='0', schema='ingest')
    op.add_column('replay', sa.Column('error', sa.Text(), nullable=True), schema='ingest')
    op.add_column('replay', sa.Column('cursor_occurred_at', sa.DateTime(timezone=True), nullable=True), schema='ingest')
    op.add_column('replay', sa.Column('cursor_seq', sa.BigInteger(), nullable=True), schema='ingest')
    op.add_column('replay', sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True), schema='ingest')
    op.add_column('replay', sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True), schema='ingest')
    op.drop_column('replay', 'units', schema='ingest')


def downgrade() -> None:
    op.add_column('replay', sa.Column('units', postgresql.ARRAY(sa.TEXT()), autoincrement=False, nullable=True), schema='ingest')
    op.drop_column('replay', 'finished_at', schema='ingest')
    op.drop_column('replay', 'heartbeat_at', schema='ingest')
    op.drop_column('replay', 'cursor_seq', schema='ingest')
    op.drop_column('replay', 'cursor_occurred_at', schema='ingest')
    op.drop_column('replay', 'error', schema='ingest')
    op.drop_column('replay', 'status', schema='ingest')
    op.alter_column('replay', 'events', server_default=None, schema='ingest')
    op.alter_column('replay', 'messages', server_default=None, schema='ingest')

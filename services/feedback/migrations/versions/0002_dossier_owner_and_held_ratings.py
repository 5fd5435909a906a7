"""dossier owner and held ratings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 17:00:00.000000
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
    op.add_column('dossier_unit', sa.Column('owner_unit_code', sa.Text(), nullable=True), schema='feedback')
    op.create_table('held_rating',
    sa.Column('hold_id', sa.Text(), nullable=False),
    sa.Column('dossier_id', sa.Text(), nullable=False),
    sa.Column('level', sa.Text(), nullable=False),
    sa.Column('criteria', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('origin', sa.Text(), nullable=False),
    sa.Column('rated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('key_id', sa.Text(), nullable=True),
    sa.Column('key_units', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('held_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('status', sa.Text(), server_default='held', nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('held', 'applied', 'dropped')", name=op.f('ck_held_rating_status')),
    sa.PrimaryKeyConstraint('hold_id', name=op.f('pk_held_rating')),
    sa.UniqueConstraint('origin', 'dossier_id', 'rated_at', name=op.f('uq_held_rating_origin_dossier_id_rated_at')),
    schema='feedback'
    )
    op.create_index('ix_held_rating_dossier_id', 'held_rating', ['dossier_id'], unique=False, schema='feedback')


def downgrade() -> None:
    op.drop_index('ix_held_rating_dossier_id', table_name='held_rating', schema='feedback')
    op.drop_table('held_rating', schema='feedback')
    op.drop_column('dossier_unit', 'owner_unit_code', schema='feedback')

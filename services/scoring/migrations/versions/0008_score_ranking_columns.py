"""ranking columns on the read model: level, parent_code, summary

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("score", sa.Column("level", sa.Text(), nullable=True), schema="scoring")
    op.add_column("score", sa.Column("parent_code", sa.Text(), nullable=True), schema="scoring")
    op.add_column("score", sa.Column("summary", postgresql.JSONB(), nullable=True), schema="scoring")
    op.execute(
        """
        UPDATE scoring.score SET level = payload->>'level', parent_code = payload->>'parent_code',
            summary = jsonb_build_object(
                'unit_name', payload->'unit_name',
                'groups', coalesce((SELECT jsonb_object_agg(g->>'id', g->'points')
                                    FROM jsonb_array_elements(payload->'groups') g), '{}'::jsonb))
        """
    )


def downgrade() -> None:
    op.drop_column("score", "summary", schema="scoring")
    op.drop_column("score", "parent_code", schema="scoring")
    op.drop_column("score", "level", schema="scoring")

"""declared calendar days; each dossier's remembered events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("days", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_calendar_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar")),
        schema="reporting",
    )
    op.add_column("dossier", sa.Column("history", postgresql.JSONB(astext_type=sa.Text()), nullable=True), schema="reporting")


def downgrade() -> None:
    op.drop_column("dossier", "history", schema="reporting")
    op.drop_table("calendar", schema="reporting")

"""read model version counters (page cache, live refresh)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 20:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "read_model_version",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_read_model_version")),
        schema="reporting",
    )
    op.execute("INSERT INTO reporting.read_model_version (scope) VALUES ('scores'), ('units'), ('warnings')")


def downgrade() -> None:
    op.drop_table("read_model_version", schema="reporting")

"""tombstones of the dossiers the retention sweep dropped, and the horizon of the purged ones

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Empty at first: dossiers dropped before this revision are not known (a late event of one
    # still recreates it, as before; they finished more than the keep window ago).
    op.create_table(
        "dropped_dossier",
        sa.Column("dossier_id", sa.Text(), nullable=False),
        sa.Column("through", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dropped_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("dossier_id", name=op.f("pk_dropped_dossier")),
        schema="reporting",
    )
    op.create_index("ix_dropped_dossier_dropped_at", "dropped_dossier", ["dropped_at"], schema="reporting")
    op.create_table(
        "dropped_horizon",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("through", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_dropped_horizon_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dropped_horizon")),
        schema="reporting",
    )


def downgrade() -> None:
    op.drop_table("dropped_horizon", schema="reporting")
    op.drop_index("ix_dropped_dossier_dropped_at", table_name="dropped_dossier", schema="reporting")
    op.drop_table("dropped_dossier", schema="reporting")

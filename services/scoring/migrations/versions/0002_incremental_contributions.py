"""incremental scoring: per dossier × period contributions, dossier recheck time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 17:00:00
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
        "contribution",
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("dossier_id", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("procedure_code", sa.Text(), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("handling_days", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("period", "dossier_id", name=op.f("pk_contribution")),
        schema="scoring",
    )
    op.create_index("ix_contribution_dossier_id", "contribution", ["dossier_id"], unique=False, schema="scoring")
    op.add_column("dossier", sa.Column("recheck_at", sa.DateTime(timezone=True), nullable=True), schema="scoring")
    # Existing dossiers have no contributions yet: judge them all at the next refresh.
    op.execute("UPDATE scoring.dossier SET recheck_at = '1970-01-01T00:00:00Z'")
    op.create_index("ix_dossier_procedure_code", "dossier", ["procedure_code"], unique=False, schema="scoring")
    op.create_index(
        "ix_dossier_recheck_at",
        "dossier",
        ["recheck_at"],
        unique=False,
        schema="scoring",
        postgresql_where=sa.text("recheck_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_dossier_recheck_at", table_name="dossier", schema="scoring")
    op.drop_index("ix_dossier_procedure_code", table_name="dossier", schema="scoring")
    op.drop_column("dossier", "recheck_at", schema="scoring")
    op.drop_index("ix_contribution_dossier_id", table_name="contribution", schema="scoring")
    op.drop_table("contribution", schema="scoring")

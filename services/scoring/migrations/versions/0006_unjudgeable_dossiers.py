"""dossiers set aside as unjudgeable

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dossier", sa.Column("unjudgeable", sa.Text(), nullable=True), schema="scoring")
    op.create_index(
        "ix_dossier_unjudgeable",
        "dossier",
        ["dossier_id"],
        unique=False,
        schema="scoring",
        postgresql_where=sa.text("unjudgeable IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_dossier_unjudgeable", table_name="dossier", schema="scoring")
    op.drop_column("dossier", "unjudgeable", schema="scoring")

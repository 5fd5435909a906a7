"""freshness clock: acceptance times on dossiers and dirty periods

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 17:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dossier", sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True), schema="scoring")
    op.add_column(
        "dirty_period",
        sa.Column("accepted_at", postgresql.ARRAY(sa.DateTime(timezone=True)), nullable=True),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_column("dirty_period", "accepted_at", schema="scoring")
    op.drop_column("dossier", "accepted_at", schema="scoring")

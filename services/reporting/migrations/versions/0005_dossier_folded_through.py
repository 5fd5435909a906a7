"""each dossier's latest remembered instant (events after it fold on the stored state)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # NULL on existing rows: their next batch refolds them from their history and sets it.
    op.add_column("dossier", sa.Column("folded_through", sa.DateTime(timezone=True), nullable=True), schema="reporting")


def downgrade() -> None:
    op.drop_column("dossier", "folded_through", schema="reporting")

"""payload digest on the read model: a refresh compares it instead of reading the payloads

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Rows without a digest compare as changed and are rewritten (once) by their next refresh.
    op.add_column("score", sa.Column("digest", sa.Text(), nullable=True), schema="scoring")


def downgrade() -> None:
    op.drop_column("score", "digest", schema="scoring")

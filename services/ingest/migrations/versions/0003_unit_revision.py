"""units carry a revision, counted by ingest at each change

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Each change of a unit counts one more: the copies other services keep apply a UnitsChanged
    # only when it is not older than what they hold.
    op.add_column("unit", sa.Column("revision", sa.BigInteger(), server_default="1", nullable=False), schema="ingest")


def downgrade() -> None:
    op.drop_column("unit", "revision", schema="ingest")

"""the unit copy keeps the revision it was written from

Revision ID: 0004
Revises: 0003_access_lock
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003_access_lock"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # A UnitsChanged redelivered after a later one (a retry) must not bring an older unit back.
    op.add_column("unit", sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False), schema="feedback")


def downgrade() -> None:
    op.drop_column("unit", "revision", schema="feedback")

"""trace links: the consumer span that changed a dossier, the traces a dirty period counts

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 17:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dossier", sa.Column("traceparent", sa.Text(), nullable=True), schema="scoring")
    op.add_column(
        "dirty_period", sa.Column("traceparents", postgresql.ARRAY(sa.Text()), nullable=True), schema="scoring"
    )


def downgrade() -> None:
    op.drop_column("dirty_period", "traceparents", schema="scoring")
    op.drop_column("dossier", "traceparent", schema="scoring")

"""period state: when each (period, methodology) was computed and last changed, one row each

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE scoring.period_state_version")
    op.create_table(
        "period_state",
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("methodology", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("period", "methodology"),
        schema="scoring",
    )
    # Until now every refresh stamped every row: the latest stamp is the period's computation.
    op.execute(
        """
        INSERT INTO scoring.period_state (period, methodology, computed_at, changed_at, version)
        SELECT period, methodology, max(computed_at), max(computed_at), nextval('scoring.period_state_version')
        FROM scoring.score GROUP BY period, methodology
        """
    )


def downgrade() -> None:
    # The rows' own stamps were left as of their last change: give them the period's again.
    op.execute(
        """
        UPDATE scoring.score s SET computed_at = ps.computed_at FROM scoring.period_state ps
        WHERE s.period = ps.period AND s.methodology = ps.methodology
        """
    )
    op.drop_table("period_state", schema="scoring")
    op.execute("DROP SEQUENCE scoring.period_state_version")

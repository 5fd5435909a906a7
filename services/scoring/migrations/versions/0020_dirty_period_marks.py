"""dirty_period: one row per mark, so that marking never waits for a recomputation

A period was one row, upserted by every judging chunk that changed its counters and deleted by
the recomputation that claimed it. A chunk's upsert therefore waited for a running recomputation
of that period to commit (the deleted row's lock), and judging and recomputation ran one after
the other. Now every mark is a row of its own (inserted, never updated) and a recomputation
deletes the marks its snapshot sees (docs/decisions.md, session 16). Existing marks are kept.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_dirty_period", "dirty_period", schema="scoring", type_="primary")
    op.add_column(
        "dirty_period",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        schema="scoring",
    )
    op.create_primary_key("pk_dirty_period", "dirty_period", ["id"], schema="scoring")
    op.create_index("ix_dirty_period_period", "dirty_period", ["period"], schema="scoring")


def downgrade() -> None:
    # One row per period again: the marks of a period merged (their acceptance times and traces).
    op.execute(
        """
        CREATE TEMP TABLE merged ON COMMIT DROP AS
        SELECT period, max(marked_at) AS marked_at,
            (SELECT array_agg(DISTINCT t) FROM scoring.dirty_period d2, unnest(d2.accepted_at) t
             WHERE d2.period = d.period) AS accepted_at,
            (array_agg(tp ORDER BY id DESC) FILTER (WHERE tp IS NOT NULL))[1:64] AS traceparents
        FROM scoring.dirty_period d LEFT JOIN LATERAL unnest(d.traceparents) tp ON true
        GROUP BY period
        """
    )
    op.execute("DELETE FROM scoring.dirty_period")
    op.drop_index("ix_dirty_period_period", "dirty_period", schema="scoring")
    op.drop_constraint("pk_dirty_period", "dirty_period", schema="scoring", type_="primary")
    op.drop_column("dirty_period", "id", schema="scoring")
    op.create_primary_key("pk_dirty_period", "dirty_period", ["period"], schema="scoring")
    op.execute(
        "INSERT INTO scoring.dirty_period (period, marked_at, accepted_at, traceparents) "
        "SELECT period, marked_at, accepted_at, traceparents FROM merged"
    )

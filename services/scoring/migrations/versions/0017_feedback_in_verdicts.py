"""5.4 from stored flags: citizens' feedback becomes part of the dossier's verdict

Every refresh subtracted 5.4's exceptions with one query that sorted every dissatisfied rating
of the history and joined it with the period's contributions (≈ 0.85 s of PostgreSQL a month's
refresh with two years of ratings). Now a rating of a dossier, or a petition naming it,
re-judges the dossier; its verdict carries the flag ``UNSATISFIED_BY_FEEDBACK`` (bit 18: the
latest rating before the judging instant is dissatisfied, or a petition received before it names
the dossier), and ``unit_tally.on_time_excepted`` counts the handled, on-time contributions
carrying it (5.4's numerator = on_time − on_time_excepted).

No contribution is rewritten: bit 18 is 0 in every stored row, which is already right for every
dossier never rated dissatisfied and never named in a petition, and the new counter starts at 0,
equal to the sums over those rows. The other dossiers are flagged for judging from their first
dissatisfied rating or petition: judging sets their bits, moves the counters by the ordinary
deltas and marks the periods whose verdicts changed dirty.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# From the first instant feedback can except them (least: a pending earlier recheck stays). A
# dossier set aside stays aside until its events change; a rating or petition of a dossier with
# no row yet needs nothing (judging reads them when it is judged first).
FLAG_FOR_JUDGING = """
UPDATE scoring.dossier d SET recheck_at = least(d.recheck_at, f.t)
FROM (
    SELECT dossier_id, min(t) AS t FROM (
        SELECT dossier_id, min(rated_at) AS t FROM scoring.rating WHERE level = 'dissatisfied' GROUP BY dossier_id
        UNION ALL
        SELECT dossier_id, min(received_at) FROM scoring.petition WHERE dossier_id IS NOT NULL GROUP BY dossier_id
    ) u GROUP BY dossier_id
) f
WHERE d.dossier_id = f.dossier_id AND d.unjudgeable IS NULL
"""


def upgrade() -> None:
    op.add_column(
        "unit_tally",
        sa.Column("on_time_excepted", sa.BigInteger(), server_default="0", nullable=False),
        schema="scoring",
    )
    op.add_column("petition", sa.Column("dossier_id", sa.Text(), nullable=True), schema="scoring")
    op.execute("UPDATE scoring.petition SET dossier_id = nullif(data->>'dossier_id', '')")
    op.create_index(
        "ix_petition_dossier_id",
        "petition",
        ["dossier_id"],
        schema="scoring",
        postgresql_where=sa.text("dossier_id IS NOT NULL"),
    )
    op.execute(FLAG_FOR_JUDGING)  # reads the dissatisfied ratings through ix_rating_dissatisfied
    # It served only the per-refresh query this revision removes; judging reads ratings by key.
    op.drop_index("ix_rating_dissatisfied", table_name="rating", schema="scoring")


def downgrade() -> None:
    op.create_index(
        "ix_rating_dissatisfied",
        "rating",
        ["rated_at"],
        schema="scoring",
        postgresql_where=sa.text("level = 'dissatisfied'"),
    )
    op.drop_index("ix_petition_dossier_id", table_name="petition", schema="scoring")
    op.drop_column("petition", "dossier_id", schema="scoring")
    op.drop_column("unit_tally", "on_time_excepted", schema="scoring")

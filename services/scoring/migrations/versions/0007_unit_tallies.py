"""per unit x period counters kept by verdict differences; drill-down indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 17:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# The counters of the contributions already judged (services/scoring/tallies.py, as of this revision).
BACKFILL = ('\nINSERT INTO scoring.unit_tally (period, unit_code, h, r, synced, on_time, result, dig_ok, reused, personal, population, online_counted, fee_dossier, fee_paid, ended, ended_days)\nSELECT period, unit_code,\n    count(*) FILTER (WHERE flags & 2 = 2), count(*) FILTER (WHERE flags & 1 = 1), count(*) FILTER (WHERE flags & 10 = 10), count(*) FILTER (WHERE flags & 6 = 6), count(*) FILTER (WHERE flags & 18 = 18), count(*) FILTER (WHERE flags & 34 = 34), count(*) FILTER (WHERE flags & 66 = 66), count(*) FILTER (WHERE flags & 130 = 130), count(*) FILTER (WHERE flags & 258 = 258), count(*) FILTER (WHERE flags & 4097 = 4097), count(*) FILTER (WHERE flags & 65537 = 65537), count(*) FILTER (WHERE flags & 131073 = 131073),\n    count(handling_days) FILTER (WHERE flags & 2 <> 0),\n    coalesce(sum(handling_days) FILTER (WHERE flags & 2 <> 0), 0)\nFROM scoring.contribution GROUP BY period, unit_code\n', '\nINSERT INTO scoring.unit_procedure_tally (period, unit_code, procedure_code, handled, for_citizens, citizen_population, online, has_fee, fee_payment, fee_paid_in_period)\nSELECT period, unit_code, procedure_code, count(*),\n    count(*) FILTER (WHERE flags & 512 <> 0), count(*) FILTER (WHERE flags & 1024 <> 0), count(*) FILTER (WHERE flags & 2048 <> 0), count(*) FILTER (WHERE flags & 8192 <> 0), count(*) FILTER (WHERE flags & 16384 <> 0), count(*) FILTER (WHERE flags & 32768 <> 0)\nFROM scoring.contribution WHERE flags & 2 <> 0 GROUP BY period, unit_code, procedure_code\n')


def upgrade() -> None:
    op.create_table(
        "unit_tally",
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("h", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("r", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("synced", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("on_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("result", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("dig_ok", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reused", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("personal", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("population", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("online_counted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("fee_dossier", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("fee_paid", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("ended", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("ended_days", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("period", "unit_code", name=op.f("pk_unit_tally")),
        schema="scoring",
    )
    op.create_table(
        "unit_procedure_tally",
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("procedure_code", sa.Text(), nullable=False),
        sa.Column("handled", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("for_citizens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("citizen_population", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("online", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("has_fee", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("fee_payment", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("fee_paid_in_period", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("period", "unit_code", "procedure_code", name=op.f("pk_unit_procedure_tally")),
        schema="scoring",
    )
    op.create_index("ix_contribution_period_unit", "contribution", ["period", "unit_code"], schema="scoring")
    op.create_index(
        "ix_rating_dissatisfied",
        "rating",
        ["rated_at"],
        schema="scoring",
        postgresql_where=sa.text("level = 'dissatisfied'"),
    )
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_rating_dissatisfied", table_name="rating", schema="scoring")
    op.drop_index("ix_contribution_period_unit", table_name="contribution", schema="scoring")
    op.drop_table("unit_procedure_tally", schema="scoring")
    op.drop_table("unit_tally", schema="scoring")

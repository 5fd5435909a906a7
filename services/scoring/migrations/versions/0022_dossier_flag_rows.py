"""dossier_flag: one row per flag, so that a consumer never waits for the chunk judging a dossier

Judging now takes the consumer's flags itself, in the chunk that judges their dossiers (the
hand-over's update of the wide dossier row is gone: docs/decisions.md, sessions 17 and 18). With one row
per dossier, a consumer raising the flag of a dossier a chunk had taken waited for that chunk's
commit (its upsert met the deleted row). Every flag is a row of its own now: inserted, never
updated; judging deletes the ones it takes. Existing flags are kept, and their dossiers get a row.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_dossier_flag", "dossier_flag", schema="scoring", type_="primary")
    op.add_column(
        "dossier_flag",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        schema="scoring",
    )
    op.create_primary_key("pk_dossier_flag", "dossier_flag", ["id"], schema="scoring")
    op.create_index("ix_dossier_flag_dossier_id", "dossier_flag", ["dossier_id", "id"], schema="scoring")
    # The consumer now creates a new dossier's row with its first flag (judging only updates rows);
    # the hand-over used to create it, so a flag raised before this migration may have none.
    op.execute(
        "INSERT INTO scoring.dossier (dossier_id) SELECT DISTINCT dossier_id FROM scoring.dossier_flag "
        "ORDER BY 1 ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    # One row per dossier again: its flags merged (the earliest acceptance, the latest trace).
    op.execute(
        """
        CREATE TEMP TABLE merged_flags ON COMMIT DROP AS
        SELECT dossier_id, min(accepted_at) AS accepted_at,
            (array_agg(traceparent ORDER BY id DESC) FILTER (WHERE traceparent IS NOT NULL))[1] AS traceparent
        FROM scoring.dossier_flag GROUP BY dossier_id
        """
    )
    op.execute("DELETE FROM scoring.dossier_flag")
    op.drop_index("ix_dossier_flag_dossier_id", "dossier_flag", schema="scoring")
    op.drop_constraint("pk_dossier_flag", "dossier_flag", schema="scoring", type_="primary")
    op.drop_column("dossier_flag", "id", schema="scoring")
    op.create_primary_key("pk_dossier_flag", "dossier_flag", ["dossier_id"], schema="scoring")
    op.execute("INSERT INTO scoring.dossier_flag SELECT dossier_id, accepted_at, traceparent FROM merged_flags")

"""dossier_flag: the consumer flags changed dossiers in a table of their own

The consumer flagged a dossier with a new event by upserting its ``scoring.dossier`` row, which a
judging chunk holds locked (``FOR UPDATE SKIP LOCKED``) for as long as it judges: under a 2,000
events/s stream the consumer spent ≈ 30 % of its time waiting for those locks. Flags now go to
``scoring.dossier_flag``, and the refresher hands them to ``dossier`` before it judges. Dossiers
already flagged on ``dossier`` (``recheck_at`` = the epoch) are judged as before.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dossier_flag",
        sa.Column("dossier_id", sa.Text(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("traceparent", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("dossier_id", name="pk_dossier_flag"),
        schema="scoring",
    )


def downgrade() -> None:
    # Pending flags go back onto the dossiers, as the consumer wrote them before.
    op.execute(
        "INSERT INTO scoring.dossier AS d (dossier_id, recheck_at, accepted_at, traceparent) "
        "SELECT dossier_id, '1970-01-01T00:00:00Z', accepted_at, traceparent FROM scoring.dossier_flag "
        "ORDER BY dossier_id ON CONFLICT (dossier_id) DO UPDATE SET recheck_at = excluded.recheck_at, "
        "unjudgeable = NULL, accepted_at = least(d.accepted_at, excluded.accepted_at), "
        "traceparent = coalesce(excluded.traceparent, d.traceparent)"
    )
    op.drop_table("dossier_flag", schema="scoring")

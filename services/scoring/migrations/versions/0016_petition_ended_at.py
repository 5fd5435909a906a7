"""petition.ended_at: when a petition's handling ended, so a refresh reads only those that count

Every refresh of a period judged every petition ever received before the period's end, in
Python (≈ 48,000 petitions of two years: 1.9 s of a month's 2.5 s refresh). A petition that
ended (refused, else answered) before a period began is not handled in it, so the refresh now
reads only those received in the period or still open at its start.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 02:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("petition", sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True), schema="scoring")
    # The domain's rule (PetitionFacts.ended_at): refused, else answered.
    op.execute(
        "UPDATE scoring.petition SET ended_at = coalesce("
        "nullif(data->>'refused_at', '')::timestamptz, nullif(data->>'answered_at', '')::timestamptz)"
    )


def downgrade() -> None:
    op.drop_column("petition", "ended_at", schema="scoring")

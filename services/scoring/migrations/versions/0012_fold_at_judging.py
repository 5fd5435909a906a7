"""fold at judging: the consumer stores events and flags the dossier; facts come with the verdict

A dossier row may now exist before its facts do (events seen, not yet judged, or no receipt
yet): the folded columns become nullable.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 20:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

FOLDED = ("unit_code", "procedure_code", "received_at", "facts")


def upgrade() -> None:
    for column in FOLDED:
        op.alter_column("dossier", column, nullable=True, schema="scoring")


def downgrade() -> None:
    # Rows without facts (not judged yet, or no receipt yet) cannot be kept under the old
    # constraint; their events stay, and the old code folds them again when their next event
    # arrives (or `./sqi recompute` rebuilds everything from the events).
    op.execute("DELETE FROM scoring.dossier WHERE facts IS NULL")
    for column in FOLDED:
        op.alter_column("dossier", column, nullable=False, schema="scoring")

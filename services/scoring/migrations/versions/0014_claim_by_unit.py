"""claim order: the judging chunk takes due dossiers by (recheck_at, unit_code, dossier_id)

Dossiers due at the same instant (every changed one is flagged with the epoch) used to be
claimed in the index's physical order, so a chunk of 1,000 spanned ~1,000 (period, unit) and
~2,500 (period, unit, procedure) counter rows; claimed by unit (a first judging has no unit
yet: by id), a chunk's verdicts fall into ~55 and ~450. The index serves the ordered claim.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def _recheck_index(columns: list[str]) -> None:
    op.drop_index("ix_dossier_recheck_at", table_name="dossier", schema="scoring")
    op.create_index(
        "ix_dossier_recheck_at",
        "dossier",
        columns,
        unique=False,
        schema="scoring",
        postgresql_where=sa.text("recheck_at IS NOT NULL"),
    )


def upgrade() -> None:
    _recheck_index(["recheck_at", "unit_code", "dossier_id"])


def downgrade() -> None:
    _recheck_index(["recheck_at"])

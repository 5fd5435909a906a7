"""dossier: drop accepted_at and traceparent, unused since session 17

The hand-over that copied a flag's acceptance time and trace onto the dossier row is gone
(session 17): judging reads them off the flags it takes (``scoring.dossier_flag``). Session 18's
code still wrote null to these columns, session 19's neither reads nor writes them; they were kept
one release so that the previous release's pods ran against the new schema during a rolling
update (docs/deploy.md, "A rolling upgrade with a migration"). The downgrade adds them back,
nullable and empty, as those pods expect them.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("dossier", "accepted_at", schema="scoring")
    op.drop_column("dossier", "traceparent", schema="scoring")


def downgrade() -> None:
    op.add_column("dossier", sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True), schema="scoring")
    op.add_column("dossier", sa.Column("traceparent", sa.Text(), nullable=True), schema="scoring")

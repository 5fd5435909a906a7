"""rating history: every rating kept, keyed by dossier and rating

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 17:52:28

``scoring.rating`` held one row per dossier (the current rating); it now keeps every
``feedback.rating-submitted.v1``, keyed by (dossier_id, rating_id), so a period counts the
latest rating given before its judging instant. Autogenerate does not see a primary key
change: written by hand (``shared.migrations.check`` is clean after it).

Data: every existing row is already a (dossier, rating) pair and stays as it is; nothing
moves. The ratings that the old table overwrote are not in this schema any more (feedback's
``rating_history`` keeps them), and counts judged with them stay in the stored scores until a
period is recomputed.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_rating", "rating", schema="scoring", type_="primary")
    op.create_primary_key("pk_rating", "rating", ["dossier_id", "rating_id"], schema="scoring")


def downgrade() -> None:
    # Back to one row per dossier: keep the latest (by rated_at, then level as scoring counts it).
    op.execute(
        """
        DELETE FROM scoring.rating r USING (
            SELECT dossier_id, rating_id, row_number() OVER (
                PARTITION BY dossier_id ORDER BY rated_at DESC, level COLLATE "C" DESC, rating_id DESC
            ) AS n FROM scoring.rating
        ) k
        WHERE r.dossier_id = k.dossier_id AND r.rating_id = k.rating_id AND k.n > 1
        """
    )
    op.drop_constraint("pk_rating", "rating", schema="scoring", type_="primary")
    op.create_primary_key("pk_rating", "rating", ["dossier_id"], schema="scoring")

"""inbox_horizon: per consumer, the latest received_at of a purged inbox row, kept by triggers

The inbox purge (shared.messaging.housekeeping, rows older than 7 days) lets a message re-driven
from its parking queue after that be applied again. Reporting's read model is idempotent but for
the feed counts (``reporting.feed``: batches, events), which counted it twice. The dossier
handler now adds a message's counts only when it was accepted after this horizon: any earlier
application of it then still has its inbox row, so it reaches the handler once.

Triggers rather than a write in the purge's code: every deleter is covered (the shared purge,
which other services run too, a person's hand-made clean-up, a TRUNCATE). The delete trigger is
per statement with a transition table: a purge chunk (5,000 rows, hourly) costs one upsert, and
the consumer's inserts nothing. The purges before this migration are taken as far as the oldest
row left of each consumer (every row purged was older); a consumer with no row left has no row:
nothing known purged.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# Rows upserted in consumer order: two purges running at once (one per worker) cannot deadlock.
_RAISE = """
    INSERT INTO reporting.inbox_horizon AS h (consumer, through)
    SELECT consumer, max(received_at) FROM {rows} GROUP BY consumer ORDER BY consumer
    ON CONFLICT (consumer) DO UPDATE SET through = GREATEST(h.through, excluded.through)
"""


def _function(name: str, rows: str) -> str:
    return f"""
        CREATE FUNCTION reporting.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {_RAISE.format(rows=rows).strip()};
            RETURN NULL;
        END $$
    """


def upgrade() -> None:
    op.create_table(
        "inbox_horizon",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("through", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_inbox_horizon")),
        schema="reporting",
    )
    op.execute(
        "INSERT INTO reporting.inbox_horizon (consumer, through)"
        " SELECT consumer, min(received_at) FROM reporting.inbox GROUP BY consumer"
    )
    op.execute(_function("inbox_purged", "purged"))
    op.execute(
        "CREATE TRIGGER horizon AFTER DELETE ON reporting.inbox REFERENCING OLD TABLE AS purged "
        "FOR EACH STATEMENT EXECUTE FUNCTION reporting.inbox_purged()"
    )
    # Before: the rows are still there to read (a TRUNCATE has no transition table).
    op.execute(_function("inbox_truncated", "reporting.inbox"))
    op.execute(
        "CREATE TRIGGER horizon_truncate BEFORE TRUNCATE ON reporting.inbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION reporting.inbox_truncated()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER horizon_truncate ON reporting.inbox")
    op.execute("DROP FUNCTION reporting.inbox_truncated()")
    op.execute("DROP TRIGGER horizon ON reporting.inbox")
    op.execute("DROP FUNCTION reporting.inbox_purged()")
    op.drop_table("inbox_horizon", schema="reporting")

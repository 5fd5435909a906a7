"""calendar_written: the transaction that last changed the declared days, for judging steps

A judging step judges with the working calendar it loaded at its start, so a day declared (or
withdrawn) during the step may be judged with the older calendar: the step's chunks consume the
declaration's re-judging marks. Each worker used to compare, at a step's start, the declared days
with the copy its previous step judged with, in memory: a worker that died after such a step took
the comparison with it, and a new worker's first copy had nothing to compare with. Now a step's
opening (adapters.judging_steps) tells from its row's snapshot, as for the catalogue, whether the
declared days were written by a transaction that snapshot could not see, and re-judges everything
if so.

One row, not a ``written_by`` on each ``calendar_day`` row: withdrawing a day deletes its row,
which would take its ``written_by`` with it. The row's version is the last writer's, and writers
take it in turn (its row lock: an upsert waits for the previous writer's commit), so its writer is
the last to commit; if any write was unseen by a snapshot, that last one was too. Set by triggers,
not by the calendar's handlers: every writer is covered, a person's hand-made correction included.
A change of a day's note alone moves nothing (judging reads the days and their kinds). No row:
never written since this migration (seen by every snapshot).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_written",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("written_by", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_calendar_written_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_written")),
        schema="scoring",
    )
    # An upsert, not an update of a seeded row: the row is there whatever emptied the table.
    op.execute(
        """
        CREATE FUNCTION scoring.calendar_day_written() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO scoring.calendar_written (id, written_by) VALUES (1, pg_current_xact_id()::text::bigint)
            ON CONFLICT (id) DO UPDATE SET written_by = excluded.written_by;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER written_by AFTER INSERT OR DELETE ON scoring.calendar_day "
        "FOR EACH ROW EXECUTE FUNCTION scoring.calendar_day_written()"
    )
    op.execute(
        "CREATE TRIGGER written_by_update AFTER UPDATE ON scoring.calendar_day "
        "FOR EACH ROW WHEN (old.day IS DISTINCT FROM new.day OR old.kind IS DISTINCT FROM new.kind) "
        "EXECUTE FUNCTION scoring.calendar_day_written()"
    )
    op.execute(
        "CREATE TRIGGER written_by_truncate AFTER TRUNCATE ON scoring.calendar_day "
        "FOR EACH STATEMENT EXECUTE FUNCTION scoring.calendar_day_written()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER written_by_truncate ON scoring.calendar_day")
    op.execute("DROP TRIGGER written_by_update ON scoring.calendar_day")
    op.execute("DROP TRIGGER written_by ON scoring.calendar_day")
    op.execute("DROP FUNCTION scoring.calendar_day_written()")
    op.drop_table("calendar_written", schema="scoring")

"""judging_step: what each judging step's catalogue copy could not see, kept past its worker

A judging step judges with the catalogue it loaded at its start, so a catalogue change committed
during it may be judged with the older copy (a chunk consumes the change's re-judging mark, or
folds a dossier not judged yet, whose row had no procedure for the change to find). Each worker
used to compare, at a step's start, the catalogue with the copy its previous step judged with, in
memory: a worker that died after such a step took the comparison with it. Now a step's row holds
the snapshot its catalogue was read under until the worker's next step has re-judged the dossiers
of every procedure written by a transaction that snapshot could not see; the row of a worker that
stops stepping is taken over by another once its lease has expired (application.refresher).

``procedure.written_by``: the transaction that wrote the row's current version
(``pg_current_xact_id``), so that "written unseen by that snapshot" is an index range and a
visibility test. Set by a trigger, not by the catalogue handler: every writer is covered, the
previous release's pods during a rolling update and a person's hand-made correction included.
Null for rows written before this migration (seen by every snapshot).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 15:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("procedure", sa.Column("written_by", sa.BigInteger(), nullable=True), schema="scoring")
    op.create_index("ix_procedure_written_by", "procedure", ["written_by"], schema="scoring")
    op.execute(
        """
        CREATE FUNCTION scoring.procedure_written_by() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.written_by := pg_current_xact_id()::text::bigint;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON scoring.procedure "
        "FOR EACH ROW EXECUTE FUNCTION scoring.procedure_written_by()"
    )
    op.create_table(
        "judging_step",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judging_step")),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_table("judging_step", schema="scoring")
    op.execute("DROP TRIGGER written_by ON scoring.procedure")
    op.execute("DROP FUNCTION scoring.procedure_written_by()")
    op.drop_index("ix_procedure_written_by", "procedure", schema="scoring")
    op.drop_column("procedure", "written_by", schema="scoring")

"""Judging steps and the reference copies they judge with (bước chấm và bản danh mục TTHC, lịch
làm việc đã dùng).

A judging step loads the procedure catalogue and the working calendar once, at its start, and
judges every chunk with those copies. A catalogue change committed during the step may thus be
judged with the older copy: a chunk of the step can consume the change's own re-judging mark
(``recheck_at``), and a dossier not judged yet has no procedure on its row for the change to
find. Those dossiers must be judged again, with a copy that has the change. So must every dossier
after a day declared or withdrawn during the step (its re-judging marks, on every dossier, are
consumed by the step's chunks alike), and every scored period (recomputed with the older copy).

Which changes a copy could not see is a question of snapshots, not of clocks or counters: the
step opens with :data:`_OPEN`, which records the snapshot of that statement
(``pg_current_snapshot``), and loads the catalogue and the calendar after it (a later snapshot:
the copies hold at least what it saw). Every write of a procedure stores its transaction's id
(``procedure.written_by``, set by a trigger: migration 0024), so "written by a transaction that
snapshot could not see" is a range of that index — from the snapshot's ``xmin``, below which
every transaction is visible — and a visibility test. The declared days have one row for all
(``calendar_written``, migration 0025: a withdrawn day leaves no row of its own), holding the
last writer's id; writers take that row in turn, so if any change was unseen by a snapshot, the
last one was too. Transaction ids, not a revision counter:
ids are given at a transaction's first write and commits come in any order, so "every revision up
to n" would need the catalogue's writers serialised to mean what it says; a snapshot says exactly
which transactions had committed.

A step's row stays until the worker's next step, whose :data:`_OPEN` finds every procedure
written unseen by it and visible now (a writer still running is invisible to the new snapshot
too: the step after sees it), deletes the row and records the new snapshot; the dossiers of those
procedures are made due again in the same transaction (``dossier_flags.rejudge_procedures``, as a
catalogue change does), so the release never commits without them. It also tells whether the
declared days were written unseen (``calendar_moved``): the caller then re-judges every dossier
and marks every scored period, in the same transaction too (``calendar_store.rejudge_everything``,
as a declaration does). Each worker's steps run one after the other, so every chunk of the
previous step has committed by then (the procedure it folded onto a new dossier's row is there to
find).

This is the only way a calendar change judged with an older copy is made right: a worker's
comparison of the declared days with its own previous copy, in memory, was lost with the worker,
and a new worker's first copy had nothing to compare with. A copy read after the step's snapshot
but holding a change that snapshot missed costs one needless re-judging, never a lost one.

A worker that dies leaves its last row: any worker's :data:`_OPEN` takes over rows whose lease
(``expires_at``) has passed, ``SKIP LOCKED`` (two workers never both take one, and never wait for
each other), and re-judges for them. A lease shorter than a live worker's step only costs a
second re-judging: that worker still reconciles its own copy at its next step from the snapshot
it remembers (:class:`JudgingStep`), row or no row.

Judging outside the refresher (``compute_period(judge=True)``: every due dossier judged in its
caller's one transaction) opens its step in that transaction, with no lease
(``application.judging.judge_due_in_step``): its row becomes visible only when what it judged
commits, so the next step of any worker may take it over at once, and no one remembers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.scoring.adapters.dossier_flags import rejudge_procedures

# One snapshot: the procedures found written unseen and the snapshot recorded as this step's are
# the same statement's, so no change falls between two steps. $1: the worker's previous step
# (null: none), $2: its snapshot as remembered (null: none), $3: the lease in seconds, $4: whether
# the transaction may commit asynchronously (below).
# Nothing moved (nearly every step): an index probe of procedure.written_by per snapshot, a read
# of calendar_written's one row, and a row deleted and one inserted.
# The transaction commits without waiting for its WAL flush (set_config: no round trip of its
# own; the flush was ≈ 8 ms of a ≈ 11 ms opening on the test machine, against ≈ 1 ms for the
# catalogue's read before): the row matters once a chunk of the step has committed, and that
# commit's flush carries every WAL record before it, this one's too. A crash losing this commit
# loses the release and the re-judging together: the rows released are there to take again.
# Not when the step is opened in a transaction that judges and scores too (``judge_due_in_step``):
# that transaction's own durability is its caller's (its outbox, its scores), not this row's.
_OPEN = """
WITH released AS (
    DELETE FROM scoring.judging_step WHERE id IN (
        SELECT id FROM scoring.judging_step WHERE id = $1 OR expires_at < now() FOR UPDATE SKIP LOCKED)
    RETURNING id, snapshot
), unseen AS (
    SELECT s::pg_snapshot AS snap FROM (
        SELECT DISTINCT s FROM unnest(array_append(ARRAY(SELECT snapshot FROM released), $2::text)) AS u(s)
        WHERE s IS NOT NULL) AS d
), opened AS (
    INSERT INTO scoring.judging_step (snapshot, expires_at)
    VALUES (pg_current_snapshot()::text, now() + make_interval(secs => $3))
    RETURNING id, snapshot
)
SELECT opened.id, opened.snapshot,
    ARRAY(SELECT id FROM released WHERE id IS DISTINCT FROM $1) AS taken_over,
    ARRAY(
        SELECT DISTINCT p.code FROM unseen JOIN scoring.procedure p
            ON p.written_by >= pg_snapshot_xmin(unseen.snap)::text::bigint
        WHERE NOT pg_visible_in_snapshot(p.written_by::text::xid8, unseen.snap) ORDER BY p.code
    ) AS moved,
    EXISTS (
        SELECT FROM unseen, scoring.calendar_written w
        WHERE NOT pg_visible_in_snapshot(w.written_by::text::xid8, unseen.snap)
    ) AS calendar_moved,
    set_config('synchronous_commit', CASE WHEN $4 THEN 'off' ELSE current_setting('synchronous_commit') END, true)
FROM opened
"""


@dataclass(frozen=True)
class JudgingStep:
    """A step's row and the snapshot its catalogue was read under."""

    id: int
    snapshot: str


@dataclass(frozen=True)
class Opened:
    """What opening a step did: its row, the rows of gone workers it took over, the procedures
    written unseen by the snapshots reconciled and how many dossiers were made due again, and
    whether the declared days were written unseen by them (the caller re-judges everything, in
    the same transaction)."""

    step: JudgingStep
    taken_over: list[int]
    moved: list[str]
    rejudged: int
    calendar_moved: bool


async def open_step(
    conn: Any, *, previous: JudgingStep | None, lease_s: float, asynchronous_commit: bool = True
) -> Opened:
    """Open a judging step (asyncpg connection, in the caller's transaction, which must commit
    before the step judges anything — or be the one that judges, then commits the row with what it
    judged —, then load the catalogue and the calendar; with ``asynchronous_commit`` the
    transaction's commit is made asynchronous): re-judge the dossiers of the
    procedures written unseen by ``previous`` (this worker's last step, as remembered) and by the
    rows whose lease expired, release those rows and record this step's snapshot for
    ``lease_s`` seconds. When the declared days were written unseen by them
    (``Opened.calendar_moved``) the caller re-judges everything before committing."""
    row = await conn.fetchrow(
        _OPEN,
        previous.id if previous else None,
        previous.snapshot if previous else None,
        lease_s,
        asynchronous_commit,
    )
    moved = list(row["moved"])
    rejudged = await rejudge_procedures(conn, moved) if moved else 0  # committed with the release
    step = JudgingStep(row["id"], row["snapshot"])
    return Opened(step, list(row["taken_over"]), moved, rejudged, row["calendar_moved"])

"""The process's copies of the methodology versions and the working calendar, kept in step with
their tables (bộ chỉ số đã tải lên, ngày nghỉ / ngày làm bù do quản trị khai báo).

The API (when a change is heard: ``Scoring.synced``) and ``./sqi recompute`` call
:func:`sync_references` before scoring, so every process scores with the same versions and
declared days; the worker syncs the methodologies each refresher tick and the calendar when it
opens a judging step, after the step's snapshot (application.refresher.open_judging_step).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.calendar_store import build_calendar, declared_days
from services.scoring.adapters.methodology_store import stored_ids, stored_methodologies
from services.scoring.application.context import Scoring
from services.scoring.domain.methodology import BUILTIN_IDS
from shared.calendar import WorkingCalendar


async def sync_calendar(app: Scoring, session: AsyncSession) -> WorkingCalendar:
    """Rebuild ``app.calendar`` if the declared days changed; returns the copy of the days read.

    Whether verdicts judged with an older copy must be judged again is not decided here: a
    worker's memory of its previous copy goes with the worker. A judging step's opening decides
    it from the snapshot its copy was read after (adapters.judging_steps)."""
    days = await declared_days(session)
    if days != app.calendar_days:
        app.calendar = build_calendar(days)
        app.calendar_days = days
    return app.calendar  # no await since the read: the copy of these days


async def sync_methodologies(app: Scoring, session: AsyncSession) -> None:
    """Bring ``app.methodologies`` in step with the table: the builtins plus every uploaded version
    (one query of the ids; a document is read only when it is new)."""
    ids = await stored_ids(session)
    for gone in set(app.methodologies) - ids - set(BUILTIN_IDS):
        del app.methodologies[gone]
    new = ids - set(app.methodologies)
    if new:
        app.methodologies.update(await stored_methodologies(session, new))


async def sync_references(app: Scoring, session: AsyncSession) -> None:
    """Both copies in step with their tables (what the API and ``./sqi recompute`` do before they
    score; a judging step loads its calendar after its opening: refresher.open_judging_step)."""
    await sync_methodologies(app, session)
    await sync_calendar(app, session)

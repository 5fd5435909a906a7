"""The process's copies of the methodology versions and the working calendar, kept in step with
their tables (bộ chỉ số đã tải lên, ngày nghỉ / ngày làm bù do quản trị khai báo).

The worker (each refresher tick), the API (when a change is heard: ``Scoring.synced``) and
``./sqi recompute`` call :func:`sync_references` before scoring, so every process scores with the
same versions and declared days.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.calendar_store import build_calendar, declared_days
from services.scoring.adapters.methodology_store import stored_ids, stored_methodologies
from services.scoring.application.context import Scoring
from services.scoring.domain.methodology import BUILTIN_IDS


async def sync_calendar(app: Scoring, session: AsyncSession) -> bool:
    """Rebuild ``app.calendar`` if the declared days changed; True when it changed after a load."""
    days = await declared_days(session)
    if days == app.calendar_days:
        return False
    first = app.calendar_days is None
    app.calendar = build_calendar(days)
    app.calendar_days = days
    return not first


async def sync_methodologies(app: Scoring, session: AsyncSession) -> None:
    """Bring ``app.methodologies`` in step with the table: the builtins plus every uploaded version
    (one query of the ids; a document is read only when it is new)."""
    ids = await stored_ids(session)
    for gone in set(app.methodologies) - ids - set(BUILTIN_IDS):
        del app.methodologies[gone]
    new = ids - set(app.methodologies)
    if new:
        app.methodologies.update(await stored_methodologies(session, new))


async def sync_references(app: Scoring, session: AsyncSession) -> bool:
    """Both copies in step with their tables (what every scoring path does before it scores);
    True when the declared days changed after a load (judged verdicts may be outdated)."""
    await sync_methodologies(app, session)
    return await sync_calendar(app, session)

"""The read model's version counters (phiên bản mô hình đọc) and the NOTIFY that announces them.

A handler that changes what pages show calls :func:`mark_changed` last, in its transaction:
the counter row is locked only until the commit, and the notification is sent after the commit
(:mod:`shared.wakeup`: not from inside it, where NOTIFY holds a cluster-wide lock through the
commit's flush), so whoever hears it reads the new rows. A transaction bumps a scope once: the
consumer applies the deliveries of a queue in hand together in one transaction, and nobody can
see the versions in between. A notification lost after its commit is made up for by the
listeners' periodic re-read of the versions (``api.live``).
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.adapters.tables import read_model_version
from shared.wakeup import wake_after_commit

CHANNEL = "sqi_reporting_changed"
Scope = Literal["scores", "units", "warnings"]
SCOPES: tuple[Scope, ...] = ("scores", "units", "warnings")
PUBLIC: tuple[Scope, ...] = ("scores", "units")  # what the public pages and the ranking read

_BUMP = text(
    "INSERT INTO reporting.read_model_version AS v (scope, version, changed_at) VALUES (:scope, 1, now())"
    " ON CONFLICT (scope) DO UPDATE SET version = v.version + 1, changed_at = now()"
    " RETURNING version"
)


async def mark_changed(session: AsyncSession, scope: Scope) -> None:
    """Bump ``scope``'s version in the caller's transaction and NOTIFY it after the commit (once
    per transaction: the unit of work opens a session per transaction, and ``session.info``
    lives as long)."""
    bumped: set[str] = session.info.setdefault("reporting_scopes_bumped", set())
    if scope in bumped:
        return
    version = (await session.execute(_BUMP, {"scope": scope})).scalar_one()
    wake_after_commit(session, CHANNEL, f"{scope}:{version}")
    bumped.add(scope)


async def current_versions(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(read_model_version.c.scope, read_model_version.c.version))
    return {r.scope: int(r.version) for r in rows}


def parse_payload(payload: str) -> tuple[str, int] | None:
    """``"scores:42"`` → ("scores", 42); None for anything else."""
    scope, _, version = payload.partition(":")
    if scope not in SCOPES or not version.isdigit():
        return None
    return scope, int(version)

"""The reference data ingest checks events against: the unit tree and the procedure codes.

Kept in memory per process and reloaded when stale or when an event names a code not seen
yet (another replica may just have created it), so a 10,000-event request costs no lookups.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.adapters import repository
from services.ingest.domain.units import Unit


@dataclass
class ReferenceData:
    units: dict[str, Unit] = field(default_factory=dict)
    procedures: set[str] = field(default_factory=set)

    @cached_property
    def parents(self) -> dict[str, str | None]:
        """Unit code → parent code, the form shared.unit_tree reads."""
        return {code: unit.parent_code for code, unit in self.units.items()}

    @cached_property
    def predecessors(self) -> dict[str, list[str]]:
        """Unit code → the units it succeeded (named in validity reasons)."""
        out: dict[str, list[str]] = {}
        for code, unit in self.units.items():
            if unit.successor_code:
                out.setdefault(unit.successor_code, []).append(code)
        return out


class ReferenceCache:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        *,
        max_age_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._max_age_s = max_age_s
        self._clock = clock
        self._data = ReferenceData()
        self._loaded_at = float("-inf")

    async def get(self, *, units: set[str] = frozenset(), procedures: set[str] = frozenset()) -> ReferenceData:  # type: ignore[assignment]
        """Current reference data; reloads if stale or if a named code is missing."""
        stale = self._clock() - self._loaded_at > self._max_age_s
        missing = bool(units - self._data.units.keys()) or bool(procedures - self._data.procedures)
        if stale or missing:
            await self.reload()
        return self._data

    async def reload(self) -> None:
        async with self._factory() as session:
            self._data = ReferenceData(
                units=await repository.load_units(session),
                procedures=await repository.load_procedure_codes(session),
            )
        self._loaded_at = self._clock()

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

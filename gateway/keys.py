"""Integrator API keys: ``sqi_<key id>_<secret>``; only a SHA-256 of the secret is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.tables import api_key
from shared.identity import Principal


@dataclass(frozen=True)
class IssuedKey:
    key: str
    key_id: str
    source: str
    units: list[str]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_KEY_ID = re.compile(r"[0-9a-f]{1,32}")


def parse_key(presented: str) -> tuple[str, str] | None:
    parts = presented.split("_")
    if len(parts) != 3 or parts[0] != "sqi" or not _KEY_ID.fullmatch(parts[1]) or not parts[2]:
        return None
    return parts[1], parts[2]


async def create_key(session: AsyncSession, *, source: str, units: Sequence[str], created_by: str) -> IssuedKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24).replace("_", "-")
    await session.execute(
        insert(api_key).values(
            key_id=key_id, secret_sha256=_hash(secret), source=source, units=list(units), created_by=created_by
        )
    )
    return IssuedKey(key=f"sqi_{key_id}_{secret}", key_id=key_id, source=source, units=list(units))


async def revoke_key(session: AsyncSession, key_id: str) -> bool:
    result = await session.execute(
        update(api_key).where(api_key.c.key_id == key_id, api_key.c.revoked_at.is_(None)).values(revoked_at=func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# A cached lookup: (valid until, secret hash, principal), or (valid until, None, None) for an
# unknown or revoked key id.
_Entry = tuple[float, str | None, Principal | None]


class KeyVerifier:
    """Checks presented keys; caches rows briefly so a burst of requests costs one lookup.

    The cache is bounded (least recently used out first) and unknown ids expire like known
    ones: random key ids sent by an attacker cannot grow the gateway's memory.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        cache_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._cache_s = cache_s
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    async def verify(self, presented: str) -> Principal | None:
        parsed = parse_key(presented)
        if parsed is None:
            return None
        key_id, secret = parsed
        cached = self._cache.get(key_id)
        if cached is None or cached[0] < self._clock():
            row = await self._load(key_id)
            cached = (self._clock() + self._cache_s, *row) if row else (self._clock() + self._cache_s, None, None)
            self._cache[key_id] = cached
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key_id)
        _, expected, principal = cached
        if expected is None or principal is None:
            return None
        return principal if hmac.compare_digest(expected, _hash(secret)) else None

    async def _load(self, key_id: str) -> tuple[str, Principal] | None:
        async with self._sessions() as session:
            row = (
                await session.execute(select(api_key).where(api_key.c.key_id == key_id, api_key.c.revoked_at.is_(None)))
            ).first()
        if row is None:
            return None
        principal = Principal(
            kind="integrator", sub=f"key:{key_id}", source=row.source, units=tuple(row.units), key_id=key_id
        )
        return row.secret_sha256, principal

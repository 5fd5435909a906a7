"""The asyncpg connection under a session's transaction, for bulk statements (unnest, COPY).

SQLAlchemy's asyncpg adapter begins its transaction lazily on the first statement; a raw
statement before it would run in autocommit, outside the unit of work. So a no-op goes first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def driver(session: AsyncSession) -> Any:
    """The session's asyncpg ``Connection``, inside the session's open transaction."""
    conn = await session.connection()
    raw: Any = (await conn.get_raw_connection()).driver_connection
    if not raw.is_in_transaction():
        await session.execute(text("SELECT 1"))
    return raw

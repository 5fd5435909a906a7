"""The scoring API hears each committed computation (``period_state.CHANNEL``) and reads that
period's state again at once, instead of serving the state it holds until its window ends."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from services.scoring.adapters.period_state import CHANNEL
from services.scoring.api.read_cache import StateReader
from services.scoring.application.refresher import refresh_once
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import mark_dirty
from shared.listener import Listener

from .helpers import apply_batches, load_reference
from .scenario import NOW, dossier_events

pytestmark = pytest.mark.integration


async def test_a_committed_refresh_is_read_again_at_once(clean: Scoring) -> None:
    app = clean
    await load_reference(app, NOW)
    await apply_batches(app, [dossier_events()], NOW)
    await refresh_once(app, now=NOW)
    # A window of an hour: only the notification can make the reader read the state again.
    reader = StateReader(app.engine, seconds=3600, stale_seconds=3600)
    listener = Listener(app.settings.listen_dsn, CHANNEL, reader.heard)
    listening = asyncio.create_task(listener.run())
    try:
        deadline = time.monotonic() + 30
        while not listener.connected:
            assert time.monotonic() < deadline, "the listener never connected"
            await asyncio.sleep(0.02)
        first = await reader.get("2026-10", "tax-2025")
        assert first is not None and first.computed_at == NOW

        later = NOW + timedelta(seconds=5)
        async with app.uow() as uow:
            await mark_dirty(uow, ["2026-10"])
        assert "2026-10" in await refresh_once(app, now=later)
        while (state := await reader.get("2026-10", "tax-2025")) is None or state.computed_at != later:
            assert time.monotonic() < deadline, "the committed refresh was never heard"
            await asyncio.sleep(0.02)
        # A period nobody reads here is not read because it was heard.
        assert ("2026-Q4", "tax-2025") not in reader._latest
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)

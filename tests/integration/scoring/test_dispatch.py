"""The scoring consumer dispatches on the producer's routing key and never drops what it cannot apply."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select

from services.scoring.adapters.tables import dossier_event
from services.scoring.bootstrap import Scoring
from services.scoring.handlers.messages import on_message
from shared.contracts import DossierEventsAccepted
from shared.messaging.topology import IncomingMessage

from .scenario import dossier_events

pytestmark = pytest.mark.integration


async def test_known_key_is_applied_and_unknown_one_raises(clean: Scoring) -> None:
    events = dossier_events()
    body = orjson.dumps({"events": [e.model_dump() for e in events]})
    async with clean.uow() as uow:
        await on_message(IncomingMessage("m1", DossierEventsAccepted.routing_key, body), uow)
    async with clean.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(dossier_event)) == len(events)
    # Raising rolls back the inbox row too: the message goes to retry, then parking.
    with pytest.raises(ValueError, match="unknown message"):
        async with clean.uow() as uow:
            await on_message(IncomingMessage("m2", "scoring.dossier-events", body), uow)

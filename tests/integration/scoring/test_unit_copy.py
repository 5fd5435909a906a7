"""Scoring's copy of the unit tree keeps the newest revision of each unit."""

from __future__ import annotations

import pytest

from services.scoring.adapters.tables import inbox, unit
from services.scoring.bootstrap import Scoring
from services.scoring.subscriptions import SUBSCRIPTIONS
from tests.integration.unit_copies import an_older_revision_never_wins

pytestmark = pytest.mark.integration


async def test_an_older_unit_record_never_overwrites_a_newer_one(clean: Scoring) -> None:
    await an_older_revision_never_wins(clean.uow, inbox, SUBSCRIPTIONS, unit)

"""Which dossier messages add to reporting's feed counts: all until the inbox purge forgot a row,
then only those accepted after the latest row it forgot (plus the clocks' margin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.reporting.handlers.dossier_events import CLOCK_MARGIN, counts_once

HORIZON = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_everything_counts_while_nothing_was_purged() -> None:
    assert counts_once(HORIZON - timedelta(days=300), None) and counts_once(None, None)


def test_only_messages_accepted_after_the_horizon_and_margin_count() -> None:
    assert counts_once(HORIZON + CLOCK_MARGIN + timedelta(seconds=1), HORIZON)
    assert not counts_once(HORIZON + CLOCK_MARGIN, HORIZON)
    assert not counts_once(HORIZON - timedelta(days=1), HORIZON)
    assert not counts_once(None, HORIZON)  # not dated: may be a repeat
    naive = (HORIZON + 2 * CLOCK_MARGIN).replace(tzinfo=None)  # read as UTC, as the driver stores it
    assert counts_once(naive, HORIZON)

"""The refresh reads only petitions received in a period or not ended before it began: those it
skips are, by the domain's own judgement, neither received nor handled in the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain import PetitionFacts, evaluate_petition, parse_period

from .helpers import CAL

BASE = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.integers(min_value=0, max_value=400 * 24).map(lambda h: BASE + timedelta(hours=h))
maybe = st.one_of(st.none(), instants)


@settings(max_examples=400, deadline=None)
@given(
    received=instants,
    refused=maybe,
    answered=maybe,
    more_info=maybe,
    published=maybe,
    label=st.sampled_from(["2026-02", "2026-06", "2026-Q2", "2026-Q3", "2026", "2026-11"]),
    now=instants,
)
def test_a_skipped_petition_counts_nowhere_in_the_period(
    received: datetime,
    refused: datetime | None,
    answered: datetime | None,
    more_info: datetime | None,
    published: datetime | None,
    label: str,
    now: datetime,
) -> None:
    # A petition's times follow its receipt.
    refused, answered, more_info, published = (
        None if t is None else max(t, received) for t in (refused, answered, more_info, published)
    )
    p = PetitionFacts(
        petition_id="pt-1",
        unit_code="P01",
        dossier_id=None,
        category="thue-tncn",
        received_at=received,
        refused_at=refused,
        answered_at=answered,
        more_info_requested_at=more_info,
        published_at=published,
    )
    period = parse_period(label)
    read = received >= period.start or p.ended_at is None or p.ended_at >= period.start
    if received < period.end and not read:
        v = evaluate_petition(p, period, period.judged_at(now), CAL)
        assert not v.received_in_period and not v.handled_in_period

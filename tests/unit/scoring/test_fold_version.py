"""Stored facts name the version of the code that folded them (``codec.FOLD_VERSION``): judging
judges a dossier from them only when it is its own. This pins a fingerprint of that code — the
fold's rules and event order, judging's event decoding, the facts encoding — so a change to it
cannot ship without a decision on the version."""

from __future__ import annotations

import hashlib
import inspect

from services.scoring.adapters import codec
from services.scoring.application import judging
from services.scoring.domain import dossier, events

# FOLD_VERSION → the fingerprint of the code it names.
RECORDED = {1: "73bfdc549ca1fc0c"}  # 1: DossierFacts.open_at / withdrawn_before added (reads only)


def fingerprint() -> str:
    parts = [
        repr(events.TYPE_ORDER),
        *map(
            inspect.getsource,
            [
                events.DomainEvent,
                events.dedupe_and_sort,
                events._full_key,
                dossier._dt,
                dossier.ClockStep,
                dossier.Transfer,
                dossier.Digitisation,
                dossier.Payment,
                dossier.OfficerAction,
                dossier.DossierFacts,
                dossier.fold_dossier,
                codec.facts_json,
                codec.facts_from_json,
                judging._event,
            ],
        ),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def test_the_fold_version_names_this_fold() -> None:
    assert RECORDED.get(codec.FOLD_VERSION) == fingerprint(), (
        "The fold, its event order, judging's event decoding or the facts encoding changed. If the "
        "facts it stores can differ from those stored before, bump FOLD_VERSION in "
        "services/scoring/adapters/codec.py (stored facts are then folded again from the events); "
        f"then record {fingerprint()!r} under the version in RECORDED."
    )

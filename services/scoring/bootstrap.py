"""Scoring's composition root: settings → database engine → the process state the use cases share.

The worker's parts are composed in :mod:`services.scoring.worker`, the API's in
:mod:`services.scoring.api.app`; both start here.
"""

from __future__ import annotations

from services.scoring.application.context import EXCHANGE, Scoring
from services.scoring.domain.methodology import DEFAULT_METHODOLOGY
from services.scoring.settings import ScoringSettings
from shared.db import create_engine, session_factory

__all__ = ["DEFAULT_METHODOLOGY", "EXCHANGE", "SERVICE", "Scoring", "bootstrap"]

SERVICE = "scoring"


def bootstrap(settings: ScoringSettings | None = None) -> Scoring:
    settings = settings or ScoringSettings()
    engine = create_engine(settings, application_name=SERVICE)
    return Scoring(settings=settings, engine=engine, sessions=session_factory(engine))

"""The scoring service's pure domain: events → dossier facts → verdicts → counts → points.

No I/O here (an import-linter contract forbids FastAPI, SQLAlchemy, aio-pika, asyncpg, httpx).
"""

from .dossier import ClockState, DossierFacts, clock_as_of, fold_dossier
from .events import DomainEvent, Procedure, dedupe_and_sort, fold_procedures, procedure_from_data
from .feedback import (
    NO_FEEDBACK,
    DossierFeedback,
    PetitionFacts,
    PetitionVerdict,
    RatingFacts,
    evaluate_petition,
    feedback_by_dossier,
    fold_petition,
    fold_ratings,
    latest_rating,
)
from .indicators import Count, compute_catalogue_counts, compute_counts
from .methodology import (
    KNOWN_BASES,
    GradeBand,
    Group,
    Indicator,
    Methodology,
    load_builtin,
    load_methodology_json,
    methodology_from_dict,
    validate_methodology,
)
from .period import Period, parse_period, previous_period
from .rounding import points_for, r2, ratio_shown
from .scoring import (
    GroupScore,
    IndicatorScore,
    Rank,
    RankInput,
    UnitScore,
    central_inheritance,
    rank,
    score,
    wilson_interval,
)
from .verdict import DossierVerdict, evaluate

__all__ = [
    "KNOWN_BASES",
    "NO_FEEDBACK",
    "ClockState",
    "Count",
    "DomainEvent",
    "DossierFacts",
    "DossierFeedback",
    "DossierVerdict",
    "GradeBand",
    "Group",
    "GroupScore",
    "Indicator",
    "IndicatorScore",
    "Methodology",
    "Period",
    "PetitionFacts",
    "PetitionVerdict",
    "Procedure",
    "Rank",
    "RankInput",
    "RatingFacts",
    "UnitScore",
    "central_inheritance",
    "clock_as_of",
    "compute_catalogue_counts",
    "compute_counts",
    "dedupe_and_sort",
    "evaluate",
    "evaluate_petition",
    "feedback_by_dossier",
    "fold_dossier",
    "fold_petition",
    "fold_procedures",
    "fold_ratings",
    "latest_rating",
    "load_builtin",
    "load_methodology_json",
    "methodology_from_dict",
    "parse_period",
    "points_for",
    "previous_period",
    "procedure_from_data",
    "r2",
    "rank",
    "ratio_shown",
    "score",
    "validate_methodology",
    "wilson_interval",
]

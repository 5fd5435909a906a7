"""Which service answers which path, and what each path may carry."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.settings import GatewaySettings
from shared.identity import Principal


@dataclass(frozen=True)
class Route:
    prefix: str
    service: str
    exact: bool = False
    citizen_writes: bool = False  # rate-limited per client address, small payloads


ROUTES: tuple[Route, ...] = (
    Route("/api/v1/events", "ingest"),
    Route("/api/v1/dossiers/", "ingest"),
    Route("/api/v1/units", "ingest"),
    Route("/api/v1/feeds", "ingest"),
    Route("/api/v1/replays", "ingest"),
    Route("/api/v1/scores", "scoring"),
    Route("/api/v1/methodologies", "scoring"),
    Route("/api/v1/calendar", "scoring"),
    Route("/api/v1/ratings", "feedback", citizen_writes=True),
    Route("/api/v1/petitions", "feedback", citizen_writes=True),
    Route("/rate", "feedback", citizen_writes=True),
    Route("/petition", "feedback", citizen_writes=True),
    Route("/static/feedback/", "feedback"),
    Route("/api/v1/warnings", "reporting"),
    Route("/api/v1/reports", "reporting"),
    Route("/dashboard", "reporting"),
    Route("/ranking", "reporting"),  # the public ranking's province pages and methodology
    Route("/static/reporting/", "reporting"),
    Route("/", "reporting", exact=True),
)


def match(path: str) -> Route | None:
    for route in ROUTES:
        if route.exact:
            if path == route.prefix:
                return route
        elif (
            path == route.prefix.rstrip("/")
            or path.startswith(route.prefix.rstrip("/") + "/")
            or (path.startswith(route.prefix) and route.prefix.endswith("/"))
        ):
            return route
    return None


# The writes on citizen routes that are a credential's own work: an integrator importing the
# ratings its system collected, staff handling a petition of their units. Every other write on
# those routes is a citizen's, whoever sends it: a key or a staff token must not lift the
# per-address limit (ratings guessing codes across dossier ids, petitions naming dossiers).
IMPORT_PATH = "/api/v1/ratings/import"
PETITION_PREFIX = "/api/v1/petitions/"
STAFF_PETITION_ACTIONS = frozenset({"refuse", "request-info", "answer", "publish", "transfer"})


def credential_write(path: str, principal: Principal) -> bool:
    """Whether a write on a citizen route is the caller's credential's own (not rate-limited)."""
    if principal.kind == "integrator":
        return path == IMPORT_PATH
    if principal.is_staff and path.startswith(PETITION_PREFIX):
        parts = path[len(PETITION_PREFIX) :].split("/")
        return len(parts) == 2 and bool(parts[0]) and parts[1] in STAFF_PETITION_ACTIONS
    return False


def upstreams(settings: GatewaySettings) -> dict[str, str]:
    return {
        "ingest": settings.ingest_url,
        "scoring": settings.scoring_url,
        "feedback": settings.feedback_url,
        "reporting": settings.reporting_url,
    }

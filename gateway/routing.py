"""Which service answers which path, and what each path may carry."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.settings import GatewaySettings


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


def upstreams(settings: GatewaySettings) -> dict[str, str]:
    return {
        "ingest": settings.ingest_url,
        "scoring": settings.scoring_url,
        "feedback": settings.feedback_url,
        "reporting": settings.reporting_url,
    }

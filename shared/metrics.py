"""The metrics that say whether SQI is healthy: one catalogue, served on every process's ``/metrics``.

Declared once here so that the code that observes them, the alerts that read them
(``k8s/``) and the dashboards agree on one name each. Labels stay low-cardinality: a source,
a service, a queue, a reason class — never a dossier, an event id or a unit code.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Every HTTP app (gateway and service APIs), observed by shared.web
HTTP_REQUESTS = Counter("sqi_http_requests_total", "HTTP requests", ["app", "method", "status"])
HTTP_LATENCY = Histogram("sqi_http_request_seconds", "HTTP request latency", ["app", "method"])

# Cached reads (đọc từ bộ đệm): the scoring API's score bodies, reporting's rendered pages
READ_CACHE_ANSWERS = Counter(
    "sqi_read_cache_answers_total", "Cached reads answered, by how they were answered", ["cache", "outcome"]
)
"""``cache``: ``scores`` or ``pages``. ``outcome``: ``current`` (the cached answer was current),
``previous`` (the answer it replaces, found current within the staleness window, while the new one
is built) or ``waited`` (the request waited for a build or render)."""

# Ingest (tiếp nhận sự kiện)
EVENTS = Counter("sqi_events_total", "Events received by ingest, by outcome", ["source", "outcome"])
"""``outcome``: ``accepted``, ``duplicate`` or ``rejected``."""
EVENTS_REJECTED = Counter("sqi_events_rejected_total", "Events rejected by ingest, by reason", ["source", "reason"])
"""``reason``: the rejection's field and class (``data.due_at:range``), never the record's values."""

# The outbox (hộp thư đi) and the relay
OUTBOX_PENDING = Gauge("sqi_outbox_pending_rows", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "sqi_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row (0 when empty)", ["service"]
)
OUTBOX_PUBLISHED = Counter("sqi_outbox_published_total", "Outbox rows published and confirmed", ["service"])

WORKER_TASK_RESTARTS = Counter(
    "sqi_worker_task_restarts_total",
    "A worker's long-lived job failed or ended early and was restarted",
    ["service", "task"],
)

# Consumers
MESSAGES_CONSUMED = Counter("sqi_messages_consumed_total", "Messages handled and acked", ["service", "queue"])
MESSAGES_RETRIED = Counter("sqi_messages_retried_total", "Messages sent to the delayed retry", ["service", "queue"])
MESSAGES_PARKED = Counter("sqi_messages_parked_total", "Messages parked after their last retry", ["service", "queue"])
CONSUMER_LAG = Gauge("sqi_consumer_lag_messages", "Messages ready in a consumer's queue", ["service", "queue"])
PARKED_MESSAGES = Gauge("sqi_parked_messages", "Messages waiting in a parking queue", ["service", "queue"])

# Scoring (chấm điểm)
REFRESH_SECONDS = Histogram(
    "sqi_refresh_duration_seconds",
    "Duration of one scoring refresh",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REFRESH_FAILURES = Counter("sqi_refresh_failures_total", "Scoring refreshes that failed")
# Where a refresh's time goes (freshness ≈ 1.5 × (judging step + the month's recomputation) under
# a stream, docs/performance.md session 14): the two parts of a tick, observed apart.
JUDGING_STEP_SECONDS = Histogram(
    "sqi_judging_step_seconds",
    "Duration of one judging step that judged dossiers (flagged and due dossiers judged)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DOSSIERS_JUDGED = Counter("sqi_dossiers_judged_total", "Dossiers judged by the refresher (again when judged again)")
PERIOD_RECOMPUTE_SECONDS = Histogram(
    "sqi_period_recompute_seconds",
    "Duration of one period's recomputation (claim, counts, scores, rows, announcements, commit)",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
FRESHNESS_SECONDS = Histogram(
    "sqi_freshness_seconds",
    "From an event's acceptance by ingest to the first score that counts it",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
DOSSIERS_UNJUDGEABLE = Counter(
    "sqi_dossiers_unjudgeable_total", "Dossiers the scorer could not judge and set aside", ["reason"]
)

# Gateway (cổng API)
CITIZEN_WRITES_REFUSED = Counter(
    "sqi_citizen_writes_refused_total", "Citizen writes refused by the per-address limit", ["route"]
)

# Feeds (nguồn dữ liệu), observed by reporting from the events it receives
FEED_SILENT_SECONDS = Gauge("sqi_feed_silent_seconds", "Seconds since a source's last accepted event", ["source"])

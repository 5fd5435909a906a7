"""Settings common to every SQI process (pydantic-settings, env prefix ``SQI_``).

Each service subclasses :class:`CommonSettings` and adds its own fields. Secrets have
development defaults so that ``./sqi up`` works on a laptop. With ``SQI_ENVIRONMENT=production``
a development default is refused *where it is used*: reading such a secret raises
:class:`DevelopmentSecretRefused`. Every process reads the secrets it uses while it starts
(the API factories read the internal token, ingest and feedback their rating-code keys,
feedback its contact key), so a missing secret stops the process at start-up with a clear
message, while a process that never uses a secret (a worker and the internal token, the
migration Job and the rating-code keys, every process and the HS256 key, which production never
accepts) need not be given it.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INTERNAL_TOKEN = "dev-internal-token-not-for-production"  # noqa: S105 (refused in production)
DEV_JWT_SECRET = "dev-jwt-secret-not-for-production-0123456789"  # noqa: S105 (refused in production)
DEV_RATING_CODE_KEYS = "1:dev-rating-code-key-not-for-production"
DEV_CONTACT_KEY = "ZGV2LWNvbnRhY3Qta2V5LW5vdC1mb3ItcHJvZHVjdGlvbg=="

MIN_INTERNAL_TOKEN_CHARS = 32


class DevelopmentSecretRefused(ValueError):
    """A production process used a secret that still has its development default."""

    def __init__(self, field: str) -> None:
        super().__init__(
            f"production refuses development secrets: {field} has its development default; "
            f"set SQI_{field.upper()} (see k8s/examples/secrets.example.yaml)"
        )
        self.field = field


def _is_development_value(value: object, dev: str) -> bool:
    if not isinstance(value, str):
        return False
    # Comma-separated key lists (rotation) count as development if any entry is the dev default.
    return value == dev or dev in value.split(",")


def with_credentials(url: str, *, user: str | None = None, password: str | None = None) -> str:
    """``url`` with its user and/or password replaced, percent-escaped (``/``, ``@``, ``:`` are safe)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    old_user, _, old_password = parts.netloc.rpartition("@")[0].partition(":")
    new_user = quote(user, safe="") if user is not None else old_user
    new_password = quote(password, safe="") if password is not None else old_password
    if not new_user and new_password:
        raise ValueError(f"a password needs a user name in the URL: {unquote(host)}")
    credentials = new_user + (f":{new_password}" if new_password else "")
    netloc = f"{credentials}@{host}" if credentials else host
    return urlunsplit(parts._replace(netloc=netloc))


def plain_dsn(database_url: str) -> str:
    """A database URL in the form asyncpg and psql understand.

    SQLAlchemy's asyncpg dialect takes ``postgresql+asyncpg://…?ssl=require``; a DSN says
    ``postgresql://…?sslmode=require`` (asyncpg would send an unknown ``ssl`` parameter to the
    server as a setting).
    """
    parts = urlsplit(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    query = [("sslmode" if key == "ssl" else key, value) for key, value in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


class CommonSettings(BaseSettings):
    """What every process needs: where the database and broker are, and shared secrets."""

    model_config = SettingsConfigDict(env_prefix="SQI_", extra="ignore")

    # Secret field -> its development default; subclasses add their own (feedback's contact key).
    development_secrets: ClassVar[dict[str, str]] = {
        "internal_token": DEV_INTERNAL_TOKEN,
        "jwt_hs256_secret": DEV_JWT_SECRET,
        "rating_code_keys": DEV_RATING_CODE_KEYS,
    }

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/sqi"
    # Passwords kept apart from the URLs, as the operators' generated Secrets hold them
    # (CloudNativePG role secrets, the RabbitMQ topology operator's user credentials). When set,
    # they are put into the URL, escaped, so any character a generator picks is safe.
    database_password: str | None = None
    # Where a process's LISTEN connection goes (shared.listener, the outbox relays). A PgBouncer in
    # transaction mode, which production puts in front of the APIs, cannot carry LISTEN: a
    # notification reaches whichever client holds the server connection then, or nobody. So the
    # APIs that listen (scoring, reporting) set this to the primary itself, as the same role;
    # None: ``database_url``.
    listen_database_url: str | None = None
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_username: str | None = None
    amqp_password: str | None = None
    # Prefix for every exchange and queue name: lets test runs use the shared broker
    # without touching the platform's own topology.
    bus_prefix: str = ""
    internal_token: str = DEV_INTERNAL_TOKEN
    # Development tokens only: production never accepts HS256, so it never reads this key.
    jwt_hs256_secret: str = DEV_JWT_SECRET
    # Staff tokens must name this audience and issuer (SQI_JWT_AUDIENCE, SQI_JWT_ISSUER) and
    # live at most SQI_JWT_MAX_LIFETIME_SECONDS from iat to exp. Production sets the identity
    # provider's values; the defaults match the development tokens of ``./sqi token``.
    jwt_audience: str = Field(default="sqi-api", min_length=1)
    jwt_issuer: str = Field(default="sqi-dev", min_length=1)
    jwt_max_lifetime_seconds: int = Field(default=12 * 3600, ge=60)
    # "version:secret,version:secret[:valid_until ISO date]" — the highest version signs new codes.
    rating_code_keys: str = DEV_RATING_CODE_KEYS
    log_level: str = "INFO"
    # Connections each process keeps open once it has needed them (SQI_DB_POOL_SIZE) and may open
    # beyond them under a burst (SQI_DB_MAX_OVERFLOW, closed again when returned). A connection
    # closed is paid again when the next burst opens one: a server process forked, its catalogue
    # caches cold, asyncpg's type introspection (a recursive catalogue query, ≈ 3 % of
    # PostgreSQL's CPU at a 2,000 events/s stream when pools of 4 churned about one connection a
    # second). So the pool holds what a busy process uses (the same 12 at most as before, 4 + 8);
    # ~10 processes of one machine still fit PostgreSQL's default max_connections of 100, and
    # production puts PgBouncer in front of the APIs.
    db_pool_size: int = Field(default=8, ge=1)
    db_max_overflow: int = Field(default=4, ge=0)
    # Workers answer /healthz, /readyz and /metrics on this port when it is set (Kubernetes probes).
    worker_http_port: int | None = None
    # Seconds a worker has, after SIGTERM, to finish the messages it holds and flush its outbox.
    # Keep it below the pod's terminationGracePeriodSeconds (k8s/ sets 60; tests check it).
    worker_shutdown_grace_s: float = Field(default=45.0, gt=0)
    # When set (production: "sqi_"), each service's migrations run under SET ROLE <prefix><schema>,
    # so the service's own role owns its tables (the migration Job's role is a member of each).
    migrate_role_prefix: str | None = None
    # How often a worker refreshes its outbox, consumer-lag and parking gauges.
    worker_monitor_interval_s: float = Field(default=10.0, gt=0)
    # Deliveries a worker holds unacked per subscription: at most what one transaction applies.
    # A subscription with a batch handler (the dossier-event streams) takes the larger one, so a
    # burst — ingest's relay publishes ≈ 36 messages in a second under a live stream — fits in one
    # or two transactions; its messages hold ≤ 500 events each, so 32 is ≤ 16,000 events in hand.
    consumer_prefetch: int = Field(default=8, ge=1, le=1_000)
    consumer_batch_prefetch: int = Field(default=32, ge=1, le=256)
    # How long a batch subscription's first delivery waits for others before its transaction
    # (shared.messaging.consumer): a tenth of a second on the way to a score refreshed every few
    # seconds, for several times fewer transactions under a live stream. 0: none.
    consumer_linger_s: float = Field(default=0.1, ge=0, le=5)

    @model_validator(mode="after")
    def _production_guards(self) -> CommonSettings:
        if self.environment == "production":
            token = self.__dict__["internal_token"]
            if token != DEV_INTERNAL_TOKEN and len(token) < MIN_INTERNAL_TOKEN_CHARS:
                raise ValueError(
                    f"SQI_INTERNAL_TOKEN must be at least {MIN_INTERNAL_TOKEN_CHARS} characters in production"
                )
        if self.database_password is not None:
            self.database_url = with_credentials(self.database_url, password=self.database_password)
            if self.listen_database_url is not None:
                self.listen_database_url = with_credentials(self.listen_database_url, password=self.database_password)
        if self.amqp_username is not None or self.amqp_password is not None:
            self.amqp_url = with_credentials(self.amqp_url, user=self.amqp_username, password=self.amqp_password)
        return self

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        # Fast path first: only the few secret fields are checked, and only in production.
        secrets = type(self).development_secrets
        if (
            name in secrets
            and super().__getattribute__("environment") == "production"
            and _is_development_value(value, secrets[name])
        ):
            raise DevelopmentSecretRefused(name)
        return value

    @property
    def hs256_enabled(self) -> bool:
        """Development tokens (HS256, ``./sqi token``) are accepted only outside production."""
        return self.environment != "production"

    @cached_property
    def asyncpg_dsn(self) -> str:
        """The same database URL in the form asyncpg and psql understand (:func:`plain_dsn`)."""
        return plain_dsn(self.database_url)

    @cached_property
    def listen_dsn(self) -> str:
        """The DSN of a LISTEN connection: ``listen_database_url``, else the database's own."""
        return plain_dsn(self.listen_database_url or self.database_url)

    def exchange(self, name: str) -> str:
        return f"{self.bus_prefix}{name}"

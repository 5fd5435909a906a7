"""Ingest's tables, all in the ``ingest`` schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.messaging.tables import inbox_table, outbox_table

SCHEMA = "ingest"
metadata = service_metadata(SCHEMA)

# (source, event_id) identifies an event: the key table makes resends duplicates and a
# changed body under a known id a conflict. Not partitioned, so its primary key is global.
event_key = Table(
    "event_key",
    metadata,
    Column("source", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("body_hash", LargeBinary, nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("source", "event_id"),
)

# The raw event log, the source of truth: every accepted event as sent. Partitioned by the
# month of occurred_at in the migration (Alembic does not model partitioning).
event_log = Table(
    "event_log",
    metadata,
    Column("seq", BigInteger, nullable=False),
    Column("source", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Column("dossier_id", Text),
    Column("body", JSONB, nullable=False),
    Index("ix_event_log_occurred_at_seq", "occurred_at", "seq"),
    Index("ix_event_log_dossier_id", "dossier_id"),
)

unit = Table(
    "unit",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("parent_code", Text),
    Column("valid_from", Date),
    Column("valid_to", Date),
    Column("successor_code", Text),
    Column("merged_from", Text),
    # One more at each change: the copies of other services keep the latest (UnitsChanged).
    Column("revision", BigInteger, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The catalogue as last upserted (latest occurred_at wins): used to reject unknown codes.
procedure = Table(
    "procedure",
    metadata,
    Column("procedure_code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("body", JSONB, nullable=False),
)

# Which unit a dossier was received at: scope checks for later events, rating-code reprints.
dossier = Table(
    "dossier",
    metadata,
    Column("dossier_id", Text, primary_key=True),
    Column("unit_code", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# Feed health per source and local day: what GET /api/v1/feeds shows.
feed_day = Table(
    "feed_day",
    metadata,
    Column("source", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("requests", Integer, nullable=False, server_default="0"),
    Column("accepted", Integer, nullable=False, server_default="0"),
    Column("duplicates", Integer, nullable=False, server_default="0"),
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("last_event_at", DateTime(timezone=True)),
    Column("last_request_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("source", "day"),
)

feed_reason = Table(
    "feed_reason",
    metadata,
    Column("source", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("reason", Text, nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("source", "day", "reason"),
)

# Replays of the raw log run as jobs in the ingest worker: a request only records one.
replay = Table(
    "replay",
    metadata,
    Column("replay_id", Text, primary_key=True),
    Column("consumer", Text, nullable=False),
    Column("period_from", DateTime(timezone=True)),
    Column("period_to", DateTime(timezone=True)),
    Column("status", Text, nullable=False, server_default="pending"),  # pending, running, done, failed
    Column("events", BigInteger, nullable=False, server_default="0"),
    Column("messages", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    # Progress, committed with each chunk's outbox rows: a replay resumes where it stopped.
    Column("cursor_occurred_at", DateTime(timezone=True)),
    Column("cursor_seq", BigInteger),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("requested_by", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

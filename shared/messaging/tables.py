"""The outbox and inbox: ordinary tables in each service's own schema."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID


def outbox_table(metadata: MetaData) -> Table:
    """Messages written in the same transaction as the state change they announce."""
    return Table(
        "outbox",
        metadata,
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("exchange", Text, nullable=False),
        Column("routing_key", Text, nullable=False),
        Column("body", LargeBinary, nullable=False),
        # W3C trace context of the transaction that wrote the row: the relay restores it.
        Column("trace_headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("last_error", Text),
        Index(
            "ix_outbox_pending",
            "next_attempt_at",
            postgresql_where=text("published_at IS NULL"),
        ),
    )


def inbox_table(metadata: MetaData) -> Table:
    """Messages already applied, per consumer: a redelivery finds its row and does nothing."""
    return Table(
        "inbox",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("message_id", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "message_id"),
    )

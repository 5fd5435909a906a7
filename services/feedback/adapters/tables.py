"""Feedback's tables, all in the ``feedback`` schema: personal data never leaves it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.db import service_metadata
from shared.messaging.tables import inbox_table, outbox_table

SCHEMA = "feedback"
metadata = service_metadata(SCHEMA)

# Our copy of the unit tree, kept from ingest's UnitsChanged messages (and the reference seed).
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
    # The revision written (UnitsChanged): a redelivered older one never overwrites a newer.
    Column("revision", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Which unit answers for a dossier (from ingest's dossier events): staff see their units' ratings.
# ``owner_unit_code`` is the unit that received it (ingest lets only one unit receive a dossier):
# its rating code is bound to it, and imported ratings must come from a key covering it.
dossier_unit = Table(
    "dossier_unit",
    metadata,
    Column("dossier_id", Text, primary_key=True),
    Column("unit_code", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("owner_unit_code", Text),
)

# Imported ratings of dossiers feedback does not know yet (the import may overtake the dossier's
# events). Applied when the dossier arrives if the importer's key covers its unit, else dropped;
# the row stays as the audit trail (status held → applied | dropped).
held_rating = Table(
    "held_rating",
    metadata,
    Column("hold_id", Text, primary_key=True),
    Column("dossier_id", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("criteria", JSONB, nullable=False),
    Column("origin", Text, nullable=False),
    Column("rated_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False),
    Column("key_id", Text),
    Column("key_units", ARRAY(Text), nullable=False),
    Column("held_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status", Text, nullable=False, server_default="held"),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution", Text),
    CheckConstraint("status IN ('held', 'applied', 'dropped')", name="status"),
    UniqueConstraint("origin", "dossier_id", "rated_at"),
    Index("ix_held_rating_dossier_id", "dossier_id"),
)

# Every rating ever given or imported (lịch sử đánh giá); ``rating`` points at the current one.
rating_history = Table(
    "rating_history",
    metadata,
    Column("rating_id", Text, primary_key=True),
    Column("dossier_id", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("criteria", JSONB, nullable=False),
    Column("comment", Text),  # staff-only; never in events, logs or public pages
    Column("origin", Text, nullable=False),
    Column("rated_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # An import sent twice is the same rating, not a second one.
    UniqueConstraint("origin", "dossier_id", "rated_at"),
    Index("ix_rating_history_dossier_id", "dossier_id"),
)

rating = Table(
    "rating",
    metadata,
    Column("dossier_id", Text, primary_key=True),
    Column("rating_id", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("criteria", JSONB, nullable=False),
    Column("comment", Text),
    Column("origin", Text, nullable=False),
    Column("rated_at", DateTime(timezone=True), nullable=False),
    Column("replacements", Integer, nullable=False, server_default="0"),
)

# Wrong rating codes per dossier id as typed (existing or not): the lockout (khóa đánh giá).
code_lock = Table(
    "code_lock",
    metadata,
    Column("dossier_id", Text, primary_key=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("first_failure_at", DateTime(timezone=True)),
    Column("locked_until", DateTime(timezone=True)),
)

# Wrong petition access codes, per petition and per client address (domain.petition_access).
access_lock = Table(
    "access_lock",
    metadata,
    Column("lock_key", Text, primary_key=True),  # "petition:<id>" or "address:<keyed hash>"
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("first_failure_at", DateTime(timezone=True)),
    Column("locked_until", DateTime(timezone=True)),
)

petition = Table(
    "petition",
    metadata,
    Column("petition_id", Text, primary_key=True),
    Column("access_code_hash", LargeBinary, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("dossier_id", Text),
    Column("category", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("contact_encrypted", LargeBinary),  # Fernet token; plaintext never stored
    Column("status", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("clock_started_at", DateTime(timezone=True), nullable=False),
    Column("refuse_due_at", DateTime(timezone=True), nullable=False),
    Column("info_due_at", DateTime(timezone=True), nullable=False),
    Column("answer_due_at", DateTime(timezone=True), nullable=False),
    Column("publish_due_at", DateTime(timezone=True)),
    Column("refused_at", DateTime(timezone=True)),
    Column("refusal_reason", Text),
    Column("info_requested_at", DateTime(timezone=True)),
    Column("question", Text),
    Column("supplement", Text),
    Column("answered_at", DateTime(timezone=True)),
    Column("answer", Text),
    Column("published_at", DateTime(timezone=True)),
    Column("transfers", Integer, nullable=False, server_default="0"),
    Column("reaction", Text),
    Column("petitioned_again", Boolean, nullable=False, server_default="false"),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("reaction IN ('like', 'dislike')", name="reaction"),
    Index("ix_petition_unit_code_status", "unit_code", "status"),
    Index("ix_petition_dossier_id", "dossier_id"),
)

# Who did what to a petition, when (audit; staff ids only, no citizen data).
petition_log = Table(
    "petition_log",
    metadata,
    Column("petition_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("change", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("petition_id", "version"),
)

# Fingerprints of recent submissions (client address + unit + title + content, hashed with a
# secret): refuses the same petition twice within a minute without storing the address.
submission = Table(
    "submission",
    metadata,
    Column("fingerprint", LargeBinary, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_submission_fingerprint_at", "fingerprint", "at"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

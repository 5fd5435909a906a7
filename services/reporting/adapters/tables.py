"""Reporting's read model (mô hình đọc), all in the ``reporting`` schema.

Pages, warnings and exports read only these tables, so they keep answering when scoring is
down. Everything here is derived from other services' messages and can be rebuilt from them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.messaging.tables import inbox_table, outbox_table

SCHEMA = "reporting"
metadata = service_metadata(SCHEMA)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)

# Per consumer, the latest ``received_at`` of an inbox row purged (or truncated away): a message
# accepted after it cannot have been applied without its inbox row still there, so it is new; one
# accepted before may be a re-driven repeat. Kept by triggers on the inbox (migration 0008), not by
# the purge's code: every deleter is covered. Read by the feed counts (handlers.dossier_events).
inbox_horizon = Table(
    "inbox_horizon",
    metadata,
    Column("consumer", Text, primary_key=True),
    Column("through", DateTime(timezone=True), nullable=False),
)

# Our copy of the unit tree (from ingest's UnitsChanged and the reference seed).
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
)

# The latest score of a unit for a period under a methodology (điểm theo kỳ). One row per key;
# a message computed earlier than the stored one never overwrites it (out-of-order delivery).
score = Table(
    "score",
    metadata,
    Column("methodology", Text, primary_key=True),
    Column("period", Text, primary_key=True),
    Column("unit_code", Text, primary_key=True),
    Column("period_kind", Text, nullable=False),  # month | quarter | year
    Column("total", Numeric(7, 2), nullable=False),
    Column("grade", Text, nullable=False),
    Column("rank", Integer),
    Column("rank_delta", Integer),
    Column("dossiers", Integer, nullable=False),
    Column("provisional", Boolean, nullable=False, server_default=text("false")),
    Column("groups", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("indicators", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("unit_name", Text),
    Column("level", Text),
    Column("parent_code", Text),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_score_ranking", "methodology", "period", "level"),
    Index("ix_score_unit", "unit_code", "methodology", "period_kind"),
)

# Grade changes and score drops (điểm giảm, đổi xếp loại): the latest per key, for warnings.
score_alert = Table(
    "score_alert",
    metadata,
    Column("kind", Text, primary_key=True),  # score_drop | grade_change
    Column("methodology", Text, primary_key=True),
    Column("period", Text, primary_key=True),
    Column("unit_code", Text, primary_key=True),
    Column("previous", Text, nullable=False),
    Column("current", Text, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Index("ix_score_alert_recent", "computed_at"),
)

# The procedure catalogue's legal time limits, to compute a due time the event did not carry.
procedure = Table(
    "procedure",
    metadata,
    Column("procedure_code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("time_limit_wd", Integer),
    Column("occurred_at", DateTime(timezone=True)),
)

# Dossiers (hồ sơ) as warnings need them: unit, officer, due time, finished or not. A finished
# dossier keeps its row (a late ``received`` must not reopen it) until housekeeping drops it.
dossier = Table(
    "dossier",
    metadata,
    Column("dossier_id", Text, primary_key=True),
    Column("unit_code", Text),
    Column("unit_at", DateTime(timezone=True)),  # when the unit was last set (received / transferred)
    Column("officer_id", Text),
    Column("officer_at", DateTime(timezone=True)),
    Column("procedure_code", Text),
    Column("received_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("due_explicit", Boolean, nullable=False, server_default=text("false")),
    Column("paused_at", DateTime(timezone=True)),  # waiting for the applicant's documents
    Column("supplement_reason", Text),
    Column("finished_at", DateTime(timezone=True)),
    Column("finish_kind", Text),  # completed | withdrawn
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The events that shape the state (domain.dossiers.remember), refolded on every change and
    # when the calendar changes. NULL on rows stored before it existed (folded incrementally).
    Column("history", JSONB),
    # The latest instant in ``history``: new events after it are folded on the stored state.
    Column("folded_through", DateTime(timezone=True)),
    Index("ix_dossier_open_due", "unit_code", "due_at", postgresql_where=text("finished_at IS NULL")),
)

# Dossiers the retention sweep dropped (hồ sơ đã xoá khỏi mô hình đọc): a later event of one is
# ignored, never refolded into a row from itself alone (open, overdue for good). Kept
# ``reporting_dropped_keep_days`` after the drop, then purged (worker.drop_finished_dossiers).
dropped_dossier = Table(
    "dropped_dossier",
    metadata,
    Column("dossier_id", Text, primary_key=True),
    # Its latest remembered instant (or finish) when dropped: the horizon rises to it when purged.
    Column("through", DateTime(timezone=True), nullable=False),
    Column("dropped_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_dropped_dossier_dropped_at", "dropped_at"),
)

# The latest ``through`` of a purged tombstone: a dossier with neither row nor tombstone whose new
# events are all at or before it may be a forgotten one, and is not taken in. One row.
dropped_horizon = Table(
    "dropped_horizon",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default=text("1")),
    Column("through", DateTime(timezone=True), nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# Feed activity per source and unit (nguồn dữ liệu): when it last sent, its usual gap.
feed = Table(
    "feed",
    metadata,
    Column("source", Text, primary_key=True),
    Column("unit_code", Text, primary_key=True),
    Column("last_accepted_at", DateTime(timezone=True), nullable=False),
    Column("last_occurred_at", DateTime(timezone=True)),
    Column("usual_gap_s", Double),  # exponentially weighted mean of the gaps between batches
    Column("batches", Integer, nullable=False, server_default=text("0")),
    Column("events", Integer, nullable=False, server_default=text("0")),
)

# Methodology documents as scoring serves them (labels, maxima), cached for when it is down.
methodology = Table(
    "methodology",
    metadata,
    Column("methodology_id", Text, primary_key=True),
    Column("document", JSONB, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One counter per part of the read model, bumped (NOTIFY after the commit) in the transaction that changes
# it: "scores", "units" (with scores, what the public pages show), "warnings" (dossiers, alerts,
# feeds, the calendar, petitions). The API caches a rendered page per version of what it reads.
read_model_version = Table(
    "read_model_version",
    metadata,
    Column("scope", Text, primary_key=True),
    Column("version", BigInteger, nullable=False, server_default=text("0")),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The admin-declared days (scoring's CalendarChanged): one row, the latest set by changed_at.
calendar = Table(
    "calendar",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default=text("1")),
    Column("days", JSONB, nullable=False, server_default=text("'[]'::jsonb")),  # [{"day", "kind"}]
    Column("changed_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# Petitions (phản ánh, kiến nghị) as feedback announces them (PetitionChanged): the latest version
# per petition. Non-personal by contract: no contact, title, content or answer text.
petition = Table(
    "petition",
    metadata,
    Column("petition_id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("classification", Text, nullable=False),  # tthc | staff | other
    Column("status", Text, nullable=False),  # received | more_info_requested | refused | answered | published
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("answer_due_at", DateTime(timezone=True), nullable=False),
    Column("publish_due_at", DateTime(timezone=True)),
    Column("refused_at", DateTime(timezone=True)),
    Column("answered_at", DateTime(timezone=True)),
    Column("published_at", DateTime(timezone=True)),
    Column("handled_on_time", Boolean),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Index("ix_petition_unit_status", "unit_code", "status"),
)

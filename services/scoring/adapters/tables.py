"""Scoring's tables, all in the ``scoring`` schema (the read model of điểm chất lượng phục vụ)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Sequence,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.db import service_metadata
from shared.messaging.tables import inbox_table, outbox_table

SCHEMA = "scoring"
metadata = service_metadata(SCHEMA)

# The unit tree (cây đơn vị) with validity intervals and successors.
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

# The catalogue (danh mục TTHC): the procedure.upserted latest by occurred_at wins.
procedure = Table(
    "procedure",
    metadata,
    Column("code", Text, primary_key=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("event_id", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    # The transaction that wrote this version (pg_current_xact_id as bigint, set by the trigger
    # ``written_by`` on every insert and update; null: before migration 0024): a judging step finds
    # the procedures its catalogue copy could not see (adapters.judging_steps).
    Column("written_by", BigInteger),
    Index("ix_procedure_written_by", "written_by"),
)

# Judging steps whose catalogue copy has not been reconciled yet (adapters.judging_steps): the
# snapshot (pg_snapshot as text) a step read the catalogue under, kept until its worker's next
# step — or, once ``expires_at`` passed, any worker's — has re-judged the dossiers of the
# procedures written unseen by it. A row per worker stepping, plus those of workers gone.
judging_step = Table(
    "judging_step",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("snapshot", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# Every dossier event received (the set the facts are folded from).
dossier_event = Table(
    "dossier_event",
    metadata,
    Column("source", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("dossier_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("data", JSONB, nullable=False),
    PrimaryKeyConstraint("source", "event_id"),
    Index("ix_dossier_event_dossier_id", "dossier_id"),
)

# A dossier's folded facts (hồ sơ), refolded from all its events whenever one arrives.
# ``finished_at`` bounds the clock's end from above: a period selects received_at < end and
# (finished_at is null or finished_at >= start). ``recheck_at``: when its contributions must be
# judged again (the epoch: changed, judge at the next refresh; null: never — see contributions.py).
dossier = Table(
    "dossier",
    metadata,
    Column("dossier_id", Text, primary_key=True),
    # The folded facts and their indexed columns, written when the dossier is judged (NULL until
    # then, and while no receipt is known).
    Column("unit_code", Text),
    Column("procedure_code", Text),
    Column("received_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("facts", JSONB),
    Column("recheck_at", DateTime(timezone=True)),
    # Why the dossier could not be judged (set aside, counted nowhere) until its facts change.
    Column("unjudgeable", Text),
    Index("ix_dossier_received_at", "received_at"),
    Index("ix_dossier_finished_at", "finished_at"),
    Index("ix_dossier_procedure_code", "procedure_code"),
    # The judging claim's order, read from either end (judging._CLAIM): a chunk's verdicts share counter rows.
    Index(
        "ix_dossier_recheck_at",
        "recheck_at",
        "unit_code",
        "dossier_id",
        postgresql_where=text("recheck_at IS NOT NULL"),
    ),
    Index("ix_dossier_unjudgeable", "dossier_id", postgresql_where=text("unjudgeable IS NOT NULL")),
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # recheck_at for "changed: judge at the next refresh"
# recheck_at for "judge again at the next refresh, its events unchanged" (the catalogue or the
# calendar changed): judging may use its stored facts. Set with least(), never over the epoch.
REJUDGE = EPOCH + timedelta(microseconds=1)

# For a transaction whose every statement finds its rows by key, through an index (judging's
# chunks, the flags they take). The planner decides that from the tables' statistics
# (autovacuum's ANALYZE, or shared.table_upkeep where it is off), and without them — a bulk load
# not analysed yet — ``dossier_id = ANY($1)`` looks like it matches every row: a scan of the
# whole event table per chunk, growing with the history (scale 1: ≈ 185 ms a chunk instead of
# ≈ 9); with them taken while a queue table was empty, a scan of the table for every row taken
# (adapters.dossier_flags). Such a transaction never needs a scan, so it says so, and does not
# let such estimates make PostgreSQL compile its statements (JIT: ≈ 70 ms a chunk).
KEYED_ONLY = "SET LOCAL enable_seqscan = off; SET LOCAL jit = off"

# Dossiers the consumer stored a new event of, not yet judged (cờ hồ sơ thay đổi): one row per
# dossier per batch, inserted and never updated, so a consumer never waits for the judging chunk
# that took an earlier flag of the same dossier (adapters.dossier_flags). ``accepted_at``: when
# ingest accepted the batch (freshness); ``traceparent``: the batch's trace (the refresh links it).
dossier_flag = Table(
    "dossier_flag",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("dossier_id", Text, nullable=False),
    Column("accepted_at", DateTime(timezone=True)),
    Column("traceparent", Text),
    Index("ix_dossier_flag_dossier_id", "dossier_id", "id"),
)

# What each dossier contributes to each period it touches (bit flags of its verdict, see
# services/scoring/domain/contributions.py): a period's counts are SQL sums over its rows.
contribution = Table(
    "contribution",
    metadata,
    Column("period", Text, nullable=False),
    Column("dossier_id", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("procedure_code", Text, nullable=False),
    Column("flags", Integer, nullable=False),
    Column("handling_days", Integer),
    PrimaryKeyConstraint("period", "dossier_id"),
    Index("ix_contribution_dossier_id", "dossier_id"),
    Index("ix_contribution_period_unit", "period", "unit_code"),  # drill-down: one unit's dossiers
)

# Counters per (period, unit as judged), kept by verdict differences in the judging transaction
# (services/scoring/adapters/tallies.py): a refresh reads these, not the period's contributions.
unit_tally = Table(
    "unit_tally",
    metadata,
    Column("period", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    *(
        Column(name, BigInteger, nullable=False, server_default="0")
        for name in (
            "h",
            "r",
            "synced",
            "on_time",
            "result",
            "dig_ok",
            "reused",
            "personal",
            "population",
            "online_counted",
            "fee_dossier",
            "fee_paid",
            "on_time_excepted",
            "ended",
            "ended_days",
        )
    ),
    PrimaryKeyConstraint("period", "unit_code"),
)

# Handled dossiers per (period, unit, procedure) carrying each bit the distinct-procedure
# indicators (3.6, 4.2, 4.4, 4.5) read.
unit_procedure_tally = Table(
    "unit_procedure_tally",
    metadata,
    Column("period", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("procedure_code", Text, nullable=False),
    *(
        Column(name, BigInteger, nullable=False, server_default="0")
        for name in (
            "handled",
            "for_citizens",
            "citizen_population",
            "online",
            "has_fee",
            "fee_payment",
            "fee_paid_in_period",
        )
    ),
    PrimaryKeyConstraint("period", "unit_code", "procedure_code"),
)

# Every rating of every dossier (mức độ hài lòng), from feedback.rating-submitted.v1: none is
# overwritten. A period counts, per dossier, the latest one given before its judging instant (a
# closed period keeps the rating it was judged with after the dossier is rated again): judging
# reads a chunk's dossiers' ratings by key (the primary key) into their verdicts.
rating = Table(
    "rating",
    metadata,
    Column("dossier_id", Text, nullable=False),
    Column("rating_id", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("criteria", JSONB, nullable=False),
    Column("rated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("dossier_id", "rating_id"),
)

# A petition's latest state (phản ánh, kiến nghị), from feedback.petition-changed.v1.
petition = Table(
    "petition",
    metadata,
    Column("petition_id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("data", JSONB, nullable=False),
    # Refused, else answered (PetitionFacts.ended_at): one that ended before a period began is
    # not handled in it, and a refresh does not read it.
    Column("ended_at", DateTime(timezone=True)),
    # The dossier it names (data->>'dossier_id'), if any: judging reads a chunk's by key (5.4).
    Column("dossier_id", Text),
    Index("ix_petition_dossier_id", "dossier_id", postgresql_where=text("dossier_id IS NOT NULL")),
)

# The read model: one row per (methodology, period, unit).
score = Table(
    "score",
    metadata,
    Column("methodology", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("total", Numeric(7, 2), nullable=False),
    Column("grade", Text, nullable=False),
    Column("rank", Integer),
    Column("rank_delta", Integer),
    Column("dossiers", Integer, nullable=False),
    Column("provisional", Boolean, nullable=False),
    Column("payload", JSONB, nullable=False),  # the breakdown's figures (services.scoring.domain.breakdown)
    Column("computed_at", DateTime(timezone=True), nullable=False),
    # What a ranking row shows beside the columns above, so a ranking never reads the payloads
    # (the breakdowns): the unit's level and parent (filtered in SQL), name and group points.
    Column("level", Text),
    Column("parent_code", Text),
    Column("summary", JSONB),
    Column("digest", Text),  # fingerprint of the payload: a refresh compares it, not the payloads
    PrimaryKeyConstraint("methodology", "period", "unit_code"),
)

# The instant each (period, methodology) was last computed and the last time any of its score rows
# moved (thời điểm tính): one small row written per refresh instead of every score row's
# computed_at. ``version`` (from period_state_version) changes whenever a row moves: the API's
# cached read bodies are keyed on it (a timestamp may repeat, a sequence never does).
period_state_version = Sequence("period_state_version", metadata=metadata)
period_state = Table(
    "period_state",
    metadata,
    Column("period", Text, nullable=False),
    Column("methodology", Text, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("version", BigInteger, nullable=False),
    PrimaryKeyConstraint("period", "methodology"),
)

# Periods whose scores must be recomputed (kỳ cần tính lại), a row per mark (inserted, never
# updated: marking never waits for a recomputation); the refresher drains a period's marks.
dirty_period = Table(
    "dirty_period",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("period", Text, nullable=False, index=True),
    Column("marked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Acceptance times of the batches counted by the next recomputation (sqi_freshness_seconds).
    Column("accepted_at", ARRAY(DateTime(timezone=True))),
    # Traces of the changes the next recomputation counts: its span links to them.
    Column("traceparents", ARRAY(Text)),
)

# Methodology versions uploaded by an admin (bộ chỉ số): immutable, scored beside the builtins.
methodology = Table(
    "methodology",
    metadata,
    Column("id", Text, primary_key=True),
    Column("document", JSONB, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Days declared by an admin (ngày nghỉ bổ sung, ngày làm bù): the working calendar is the holidays
# package's Vietnamese holidays plus these; a change re-judges every dossier.
calendar_day = Table(
    "calendar_day",
    metadata,
    Column("day", Date, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("note", Text),
    Column("declared_by", Text, nullable=False),
    Column("declared_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('day_off', 'working_day')", name="kind"),
)

# The transaction that last changed the declared days (pg_current_xact_id as bigint, set by the
# triggers ``written_by*`` on ``calendar_day``: a day declared, withdrawn or changed in kind; no
# row: none since migration 0025): a judging step finds whether its calendar copy could have
# missed a change (adapters.judging_steps). One row: a withdrawn day leaves no row of its own.
calendar_written = Table(
    "calendar_written",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default=text("1")),
    Column("written_by", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

"""Postgres access: the schema (idempotent DDL) and the few statements the system writes.

Predictions are keyed by (source, listing id, model version): a listing belongs to the site that sent it
(two sites' ids never collide), and replaying an event adds no row. Dead letters are keyed by the Kafka
coordinate of the rejected message, so a redelivered message is stored once; each keeps at most
``MAX_STORED_PAYLOAD`` bytes of what arrived (the whole message stays on ``listings.dlq``) and rows older than
the retention setting are deleted (``delete_old_dead_letters``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from operator import attrgetter
from typing import Any, Final, Protocol, TypeVar

import psycopg

# Production's roles (deploy/postgres-init.sh makes them; none is a superuser). `pricemyride prepare` runs as
# the owner, which owns every table; the grants below give each other role what its services do, and no more.
# Locally one role owns and writes (the writer URL's), and the grants to roles that do not exist are skipped.
OWNER_ROLE: Final = "pricemyride_owner"  # migrations (`pricemyride prepare`)
WRITER_ROLE: Final = "pricemyride_writer"  # scoring workers and the drift monitor
TRAINER_ROLE: Final = "pricemyride_trainer"  # the retrain flow and listener: reads, records the gate's decisions
READER_ROLE: Final = "pricemyride_reader"  # the dashboard: reads, with a statement timeout
READER_STATEMENT_TIMEOUT: Final = "5s"


class ModelEventKind(StrEnum):
    """The kinds of row in ``model_events``; the table's CHECK constraint is built from this list."""

    PROMOTED = "promoted"
    REJECTED = "rejected"
    FAILED = "failed"
    SHADOWED = "shadowed"  # a version starts scoring in shadow (a challenger, or the old champion watching)
    SHADOW_ENDED = "shadow_ended"  # … and stops (its metrics say how: promoted, rejected, kept, rolled back)
    ROLLED_BACK = "rolled_back"  # a champion the live test found worse than the one before it


class _Timed(Protocol):
    @property
    def event_time(self) -> datetime: ...


Row = TypeVar("Row", bound=_Timed)

# A stored listing's make and model family as the comparables' index and query both write them.
MAKE: Final = "(lower(listing->>'manufacturer'))"
FAMILY: Final = "(lower(split_part(listing->>'model', ' ', 1)))"
YEAR: Final = "((listing->>'year')::int)"
_KINDS: Final = ", ".join(f"'{kind.value}'" for kind in ModelEventKind)

SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS predictions (
    source          text             NOT NULL DEFAULT 'unknown',
    listing_id      text             NOT NULL,
    model_version   integer          NOT NULL,
    event_id        uuid             NOT NULL,
    predicted_price double precision NOT NULL,
    asking_price    double precision,
    event_time      timestamptz      NOT NULL,
    scored_at       timestamptz      NOT NULL,
    stored_at       timestamptz      NOT NULL DEFAULT clock_timestamp(),
    listing         jsonb            NOT NULL,
    PRIMARY KEY (source, listing_id, model_version)
);
CREATE INDEX IF NOT EXISTS predictions_scored_at ON predictions (scored_at DESC);
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS price_low double precision;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS price_high double precision;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS deal_rating text;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS source text;

DO $$
DECLARE old_key name;
BEGIN  -- tables keyed by (listing_id, model_version) before sites were kept apart: the source joins the key
    SELECT conname INTO old_key FROM pg_constraint
    WHERE conrelid = 'predictions'::regclass AND contype = 'p' AND array_length(conkey, 1) = 2;
    IF old_key IS NOT NULL THEN
        UPDATE predictions SET source = coalesce(listing->>'source', 'unknown') WHERE source IS NULL;
        ALTER TABLE predictions ALTER COLUMN source SET DEFAULT 'unknown', ALTER COLUMN source SET NOT NULL;
        EXECUTE format('ALTER TABLE predictions DROP CONSTRAINT %I, '
                       'ADD CONSTRAINT predictions_pkey PRIMARY KEY (source, listing_id, model_version)', old_key);
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS drift_windows (
    id               bigserial   PRIMARY KEY,
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    closed_at        timestamptz NOT NULL DEFAULT now(),
    model_version    integer     NOT NULL,
    rows             integer     NOT NULL,
    labelled_rows    integer     NOT NULL,
    drift_share      double precision NOT NULL,
    prediction_drift double precision NOT NULL,
    price_drift      double precision NOT NULL,
    mae              double precision,
    mape             double precision,
    mae_ratio        double precision,
    coverage         double precision,
    fired            text[]      NOT NULL,
    retrain_requested boolean    NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS drift_windows_closed_at ON drift_windows (closed_at DESC);
CREATE TABLE IF NOT EXISTS drift_features (
    window_id bigint  NOT NULL REFERENCES drift_windows (id) ON DELETE CASCADE,
    feature   text    NOT NULL,
    score     double precision NOT NULL,
    drifted   boolean NOT NULL,
    PRIMARY KEY (window_id, feature)
);
CREATE TABLE IF NOT EXISTS retrain_requests (
    request_id       uuid        PRIMARY KEY,
    requested_at     timestamptz NOT NULL,
    reason           text        NOT NULL,
    champion_version integer     NOT NULL,
    window_id        bigint      REFERENCES drift_windows (id),
    metrics          jsonb       NOT NULL DEFAULT '{{}}'
);

CREATE TABLE IF NOT EXISTS model_events (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text        NOT NULL CONSTRAINT model_events_kind CHECK (kind IN ({_KINDS})),
    version     integer     NOT NULL,
    champion    integer,               -- the champion it was compared with
    reason      text        NOT NULL,
    metrics     jsonb       NOT NULL DEFAULT '{{}}'
);

DO $$
BEGIN  -- tables made before the kinds were checked, or before the last kind was added, get today's check
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'model_events'::regclass AND conname = 'model_events_kind'
                   AND pg_get_constraintdef(oid) LIKE '%''{ModelEventKind.ROLLED_BACK}''%') THEN
        ALTER TABLE model_events DROP CONSTRAINT IF EXISTS model_events_kind;
        ALTER TABLE model_events ADD CONSTRAINT model_events_kind CHECK (kind IN ({_KINDS}));
    END IF;
END $$;

-- Shadow scoring (``training.shadow``): a shadow version's price for each listing the champion priced, in the
-- same transaction as the champion's row; never published, never shown to sites. The champion's price and the
-- listing are in ``predictions`` (source, listing_id, champion_version).
CREATE TABLE IF NOT EXISTS shadow_predictions (
    source           text             NOT NULL,
    listing_id       text             NOT NULL,
    shadow_version   integer          NOT NULL,
    champion_version integer          NOT NULL,
    predicted_price  double precision NOT NULL,
    price_low        double precision NOT NULL,
    price_high       double precision NOT NULL,
    event_time       timestamptz      NOT NULL,
    stored_at        timestamptz      NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (shadow_version, source, listing_id)
);
-- A worker whose shadow could not load or raised: the live gate ends that shadow with the reason.
CREATE TABLE IF NOT EXISTS shadow_drops (
    shadow_version integer     NOT NULL,
    worker         text        NOT NULL,
    reason         text        NOT NULL,
    dropped_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS dead_letters (
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    key         bytea,
    payload     bytea,
    reason      text        NOT NULL,
    failed_at   timestamptz NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS payload_bytes integer;  -- the size that arrived
CREATE INDEX IF NOT EXISTS dead_letters_failed_at ON dead_letters (failed_at DESC);

-- The valuation API's comparables (``api.comparables``): the latest stored listings of a make, model family
-- and model year, read in index order: a bounded scan however large the table grows. One index only: each
-- costs every stored row ~6 µs of the workers' store step (a second, by make alone, was dropped for that).
CREATE INDEX IF NOT EXISTS predictions_comparables ON predictions ({MAKE}, {FAMILY}, {YEAR} DESC, scored_at DESC);

-- The analysts' market (``monitoring.market``): each listing's latest valuation in a narrow row, and rollups of
-- them per day and week, per segment, recomputed for the periods that received valuations since the last
-- refresh (the drift monitor, every PRICEMYRIDE_MARKET_REFRESH_S). The Market page reads market_cells only.
CREATE TABLE IF NOT EXISTS market_listings (
    source          text             NOT NULL,
    listing_id      text             NOT NULL,
    posted_on       date,                      -- the site's posting date (UTC day), when it gave one
    arrived_on      date             NOT NULL, -- the day the listing reached the stream (UTC)
    make            text,
    family          text,                      -- the model's first word, as the comparables read it
    model           text,
    year            integer,
    odometer        double precision,
    body            text,
    state           text,
    asking_price    double precision,          -- only where it would be a training label
    predicted_price double precision NOT NULL,
    price_low       double precision NOT NULL,
    price_high      double precision NOT NULL,
    discount        double precision,          -- (fair − asking) ÷ fair: the deal finder's order
    deal_rating     text,
    model_version   integer          NOT NULL,
    scored_at       timestamptz      NOT NULL,
    PRIMARY KEY (source, listing_id)
);
CREATE INDEX IF NOT EXISTS market_listings_posted ON market_listings (posted_on);
CREATE INDEX IF NOT EXISTS market_listings_arrived ON market_listings (arrived_on);
CREATE INDEX IF NOT EXISTS market_listings_deals ON market_listings (discount DESC) WHERE discount IS NOT NULL;
CREATE INDEX IF NOT EXISTS market_listings_make_deals ON market_listings (make, discount DESC)
    WHERE discount IS NOT NULL;
CREATE INDEX IF NOT EXISTS market_listings_model_deals ON market_listings (make, family, discount DESC)
    WHERE discount IS NOT NULL;  -- a make and model chosen: read that model's listings only, best first
CREATE TABLE IF NOT EXISTS market_cells (
    axis          text             NOT NULL CHECK (axis IN ('posted', 'arrived')),
    segment       text             NOT NULL CHECK (segment IN ('all', 'make', 'model', 'type', 'state')),
    value         text             NOT NULL,   -- '' for the whole market
    period_kind   text             NOT NULL CHECK (period_kind IN ('day', 'week')),
    period        date             NOT NULL,   -- the day, or the Monday of the week
    listings      integer          NOT NULL,
    priced        integer          NOT NULL,   -- of them with an asking price
    retention     double precision,            -- median asking ÷ fair price
    asking_median double precision,
    fair_median   double precision,
    great         integer          NOT NULL,
    good          integer          NOT NULL,
    fair          integer          NOT NULL,
    high          integer          NOT NULL,
    overpriced    integer          NOT NULL,
    unsure        integer          NOT NULL,   -- not enough information
    model_version integer          NOT NULL,   -- the version that valued most of them
    PRIMARY KEY (axis, segment, value, period_kind, period)
);
-- Stored predictions per model version, counted at each refresh (a count of the whole table costs ~0.1 s per
-- million rows: too much for every page refresh, cheap once a minute). The Live and Models pages read it.
CREATE TABLE IF NOT EXISTS market_versions (
    model_version integer PRIMARY KEY,
    predictions   bigint  NOT NULL
);
CREATE TABLE IF NOT EXISTS market_refresh (
    one           boolean          PRIMARY KEY DEFAULT true CHECK (one),
    scored_through timestamptz     NOT NULL,   -- valuations scored up to here are folded in
    refreshed_at  timestamptz      NOT NULL,
    seconds       double precision NOT NULL,   -- how long the last refresh took
    listings      integer          NOT NULL,   -- valuations it folded in
    periods       integer          NOT NULL    -- (axis, kind, period) cells it recomputed
);

-- The valuation API's keys (``api.keys``): one row per key a site was given; only its hash is kept.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      text        PRIMARY KEY,
    site        text        NOT NULL,
    key_hash    bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
"""  # noqa: S608 - built from the ModelEventKind names and the expressions above only

GRANTS: Final = f"""
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
        GRANT USAGE ON SCHEMA public TO {READER_ROLE};
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER_ROLE};
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {READER_ROLE};
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{WRITER_ROLE}') THEN
        GRANT USAGE ON SCHEMA public TO {WRITER_ROLE};
        GRANT SELECT, INSERT, UPDATE ON predictions TO {WRITER_ROLE};
        GRANT SELECT, INSERT, DELETE ON dead_letters TO {WRITER_ROLE};
        GRANT SELECT, INSERT ON drift_windows, drift_features, retrain_requests TO {WRITER_ROLE};
        GRANT SELECT ON model_events TO {WRITER_ROLE};
        GRANT SELECT, INSERT, UPDATE ON shadow_predictions TO {WRITER_ROLE};
        GRANT INSERT ON shadow_drops TO {WRITER_ROLE};
        GRANT SELECT, INSERT, UPDATE, DELETE ON market_listings, market_cells, market_versions, market_refresh
            TO {WRITER_ROLE};
        GRANT USAGE ON SEQUENCE drift_windows_id_seq TO {WRITER_ROLE};
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{TRAINER_ROLE}') THEN
        GRANT USAGE ON SCHEMA public TO {TRAINER_ROLE};
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO {TRAINER_ROLE};
        GRANT INSERT ON model_events TO {TRAINER_ROLE};
        GRANT USAGE ON SEQUENCE model_events_id_seq TO {TRAINER_ROLE};
    END IF;
END $$;
"""  # noqa: S608 - built from the role-name constants above only


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One row of ``predictions``; each field's metadata names its binary COPY type (the staging column).
    The column lists and the staging SQL below are derived from these fields: they are written once."""

    source: str = field(metadata={"copy": "text"})
    listing_id: str = field(metadata={"copy": "text"})
    model_version: int = field(metadata={"copy": "int4"})
    event_id: Any = field(metadata={"copy": "uuid"})
    predicted_price: float = field(metadata={"copy": "float8"})
    price_low: float = field(metadata={"copy": "float8"})
    price_high: float = field(metadata={"copy": "float8"})
    deal_rating: str | None = field(metadata={"copy": "text"})
    asking_price: float | None = field(metadata={"copy": "float8"})
    event_time: datetime = field(metadata={"copy": "timestamptz"})
    scored_at: datetime = field(metadata={"copy": "timestamptz"})
    listing: str = field(metadata={"copy": "text", "cast": "::jsonb"})  # JSON text; jsonb in the table


@dataclass(frozen=True)
class Staging:
    """How rows of one dataclass are written: binary COPY into a per-session temporary table, then one merge into
    ``table`` keyed by ``key`` (a replayed event changes nothing; a newer one of the same key replaces it). The
    SQL is derived from the row type's fields — each names its COPY type in ``metadata["copy"]`` — so it is
    written once for every table stored this way. The table has ``event_time`` and ``stored_at`` columns; the
    row type and the key have two fields or more (``attrgetter`` gives a tuple then)."""

    table: str
    row: type
    key: tuple[str, ...]

    @cached_property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self.row))

    @cached_property
    def types(self) -> list[str]:
        return [f.metadata["copy"] for f in fields(self.row)]

    @cached_property
    def create(self) -> str:
        typed = ", ".join(f"{c} {t}" for c, t in zip(self.columns, self.types, strict=True))
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.table}_staging ({typed}) ON COMMIT DELETE ROWS"

    @cached_property
    def copy(self) -> str:
        return f"COPY {self.table}_staging ({', '.join(self.columns)}) FROM STDIN (FORMAT BINARY)"

    def staged(self, rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows to COPY: the newest per key (one merge may not touch a row twice), as tuples in column order."""
        values, key = attrgetter(*self.columns), attrgetter(*self.key)
        return [values(row) for row in newest_per_key(rows, key)]

    @cached_property
    def merge(self) -> str:
        """Built from the row type's field names only (no outside text): S608 does not apply."""
        selected = ", ".join(f.name + f.metadata.get("cast", "") for f in fields(self.row))
        updated = ", ".join(f"{c} = EXCLUDED.{c}" for c in self.columns if c not in self.key)
        return f"""
INSERT INTO {self.table} ({", ".join(self.columns)})
SELECT {selected}
FROM {self.table}_staging
ON CONFLICT ({", ".join(self.key)}) DO UPDATE
SET {updated}, stored_at = clock_timestamp()
WHERE EXCLUDED.event_time > {self.table}.event_time
"""  # noqa: S608


PREDICTIONS: Final = Staging("predictions", PredictionRow, ("source", "listing_id", "model_version"))

INSERT_DEAD_LETTERS: Final = """
INSERT INTO dead_letters (topic, partition, "offset", key, payload, reason, failed_at, payload_bytes)
SELECT * FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::bytea[], %s::bytea[],
                     %s::text[], %s::timestamptz[], %s::integer[])
ON CONFLICT DO NOTHING
"""
MAX_STORED_PAYLOAD: Final = 4096  # bytes of a rejected message kept in Postgres (enough to see what it was)
MAX_STORED_KEY: Final = 256  # bytes of its Kafka key (listing ids are at most 64 characters)
# Oldest first, in slices, so that a large backlog never holds one long transaction or lock.
PRUNE_LOCK: Final = 0x70_6D_72_64  # the advisory lock key of dead-letter pruning ("pmrd")
DELETE_OLD_DEAD_LETTERS: Final = """
DELETE FROM dead_letters WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM dead_letters WHERE failed_at < %s ORDER BY failed_at LIMIT %s))
"""


INSERT_SHADOW_DROP: Final = "INSERT INTO shadow_drops (shadow_version, worker, reason) VALUES (%s, %s, %s)"


@dataclass(frozen=True, slots=True)
class ShadowRow:
    """One row of ``shadow_predictions``; each field's metadata names its binary COPY type (``SHADOWS``)."""

    source: str = field(metadata={"copy": "text"})
    listing_id: str = field(metadata={"copy": "text"})
    shadow_version: int = field(metadata={"copy": "int4"})
    champion_version: int = field(metadata={"copy": "int4"})
    predicted_price: float = field(metadata={"copy": "float8"})
    price_low: float = field(metadata={"copy": "float8"})
    price_high: float = field(metadata={"copy": "float8"})
    event_time: datetime = field(metadata={"copy": "timestamptz"})


SHADOWS: Final = Staging("shadow_predictions", ShadowRow, ("shadow_version", "source", "listing_id"))


@dataclass(frozen=True, slots=True)
class ShadowDrop:
    """A worker stopped scoring with a shadow version, and why (a row of ``shadow_drops``)."""

    shadow_version: int
    worker: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """One row of ``dead_letters`` (field order = the column order of ``INSERT_DEAD_LETTERS``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes | None
    reason: str
    failed_at: datetime


def create_schema(conn: psycopg.Connection[Any]) -> None:
    """Create tables and indexes if missing, and grant each role that exists what its services need."""
    with conn.transaction():
        conn.execute(SCHEMA)
        conn.execute(GRANTS)


def newest_per_key(rows: Sequence[Row], key: Callable[[Row], tuple[Any, ...]]) -> list[Row]:
    """Keep the newest event per ``key``: one upsert may not touch a row twice."""
    newest: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        k = key(row)
        if k not in newest or row.event_time >= newest[k].event_time:
            newest[k] = row
    return list(newest.values())


def _columns(rows: Sequence[Any]) -> list[list[Any]]:
    """Row dataclasses → one list per field, in declaration order (the ``unnest`` parameters)."""
    names = [f.name for f in fields(rows[0])] if rows else []
    return [[getattr(row, name) for row in rows] for name in names]


def dead_letter_params(rows: Sequence[DeadLetterRow]) -> list[list[Any]]:
    """The ``unnest`` parameters, each payload cut to ``MAX_STORED_PAYLOAD`` and key to ``MAX_STORED_KEY``
    bytes (``payload_bytes`` keeps the size that arrived)."""
    if not rows:
        return [[] for _ in range(8)]
    columns = _columns(rows)
    columns[3] = [None if key is None else key[:MAX_STORED_KEY] for key in columns[3]]
    columns[4] = [None if payload is None else payload[:MAX_STORED_PAYLOAD] for payload in columns[4]]
    return [*columns, [None if row.payload is None else len(row.payload) for row in rows]]


def delete_old_dead_letters(conn: psycopg.Connection[Any], before: datetime, slice_rows: int = 10_000) -> int:
    """Delete the dead letters that failed before ``before``, a slice per transaction; the number deleted.
    One worker at a time (a session advisory lock): another that finds it taken deletes nothing and returns 0."""
    with conn.transaction():
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", [PRUNE_LOCK]).fetchone()
    if not locked or not locked[0]:
        return 0
    deleted = 0
    try:
        while True:
            with conn.transaction():
                count = conn.execute(DELETE_OLD_DEAD_LETTERS, [before, slice_rows]).rowcount
            deleted += count
            if count < slice_rows:
                return deleted
    finally:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_unlock(%s)", [PRUNE_LOCK])


async def prepare_session(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create this session's staging tables (temporary: they live as long as the connection)."""
    async with conn.transaction():
        for staging in (PREDICTIONS, SHADOWS):
            await conn.execute(staging.create)


async def copy_merge(conn: psycopg.AsyncConnection[Any], staging: Staging, rows: Sequence[Any]) -> None:
    """``rows`` into ``staging.table`` by binary COPY and one merge, in the caller's transaction."""
    async with conn.cursor().copy(staging.copy) as copy:
        copy.set_types(staging.types)
        for row in staging.staged(rows):
            await copy.write_row(row)
    await conn.execute(staging.merge)


async def write_outputs(
    conn: psycopg.AsyncConnection[Any], predictions: Sequence[PredictionRow], dead_letters: Sequence[DeadLetterRow]
) -> None:
    """A batch's predictions (keyed by source, listing and version) and dead letters (keyed by their Kafka
    coordinate), in the caller's transaction on a ``prepare_session`` connection."""
    if predictions:
        await copy_merge(conn, PREDICTIONS, predictions)
    if dead_letters:
        await conn.execute(INSERT_DEAD_LETTERS, dead_letter_params(dead_letters))


async def write_shadow(conn: psycopg.AsyncConnection[Any], shadow: Sequence[ShadowRow], drops: Sequence[ShadowDrop]
                       ) -> None:  # fmt: skip
    """A shadow's prices of a batch (keyed by shadow version, source and listing) and its drops, in the caller's
    transaction on a ``prepare_session`` connection."""
    if shadow:
        await copy_merge(conn, SHADOWS, shadow)
    for drop in drops:
        await conn.execute(INSERT_SHADOW_DROP, [drop.shadow_version, drop.worker, drop.reason])


def write_predictions(conn: psycopg.Connection[Any], predictions: Sequence[PredictionRow]) -> None:
    """The synchronous twin of ``write_outputs`` for predictions (batch jobs such as rescore)."""
    with conn.transaction():
        conn.execute(PREDICTIONS.create)
        with conn.cursor().copy(PREDICTIONS.copy) as copy:
            copy.set_types(PREDICTIONS.types)
            for row in PREDICTIONS.staged(predictions):
                copy.write_row(row)
        conn.execute(PREDICTIONS.merge)

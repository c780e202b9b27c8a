"""Postgres access: the schema (idempotent DDL) and the few statements the system writes.

Predictions are keyed by (listing id, model version): replaying an event adds no row. Dead letters are
keyed by the Kafka coordinate of the rejected message, so a redelivered message is stored once.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final

import psycopg

READER_ROLE: Final = "pricemyride_reader"

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS predictions (
    listing_id      text             NOT NULL,
    model_version   integer          NOT NULL,
    event_id        uuid             NOT NULL,
    predicted_price double precision NOT NULL,
    asking_price    double precision,
    event_time      timestamptz      NOT NULL,
    scored_at       timestamptz      NOT NULL,
    stored_at       timestamptz      NOT NULL DEFAULT clock_timestamp(),
    listing         jsonb            NOT NULL,
    PRIMARY KEY (listing_id, model_version)
);
CREATE INDEX IF NOT EXISTS predictions_scored_at ON predictions (scored_at DESC);
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS price_low double precision;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS price_high double precision;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS deal_rating text;

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
    metrics          jsonb       NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS model_events (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text        NOT NULL,  -- promoted | rejected | registered
    version     integer     NOT NULL,
    champion    integer,               -- the champion it was compared with
    reason      text        NOT NULL,
    metrics     jsonb       NOT NULL DEFAULT '{}'
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
CREATE INDEX IF NOT EXISTS dead_letters_failed_at ON dead_letters (failed_at DESC);
"""

GRANT_READER: Final = f"""
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
        GRANT USAGE ON SCHEMA public TO {READER_ROLE};
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER_ROLE};
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {READER_ROLE};
    END IF;
END $$;
"""

PREDICTION_COLUMNS: Final = ("listing_id", "model_version", "event_id", "predicted_price", "price_low", "price_high",
                              "deal_rating", "asking_price", "event_time", "scored_at", "listing")  # fmt: skip
# Binary COPY types of the staging columns, in PREDICTION_COLUMNS order (the listing travels as JSON text).
STAGING_TYPES: Final = ("text", "int4", "uuid", "float8", "float8", "float8", "text", "float8", "timestamptz",
                        "timestamptz", "text")  # fmt: skip

# Predictions are written as: COPY into a per-session staging table, then one merge into ``predictions``.
STAGING_TABLE: Final = """
CREATE TEMP TABLE IF NOT EXISTS predictions_staging (
    listing_id text, model_version integer, event_id uuid, predicted_price float8, price_low float8,
    price_high float8, deal_rating text, asking_price float8, event_time timestamptz, scored_at timestamptz,
    listing text
) ON COMMIT DELETE ROWS
"""
COPY_STAGING: Final = """
COPY predictions_staging (listing_id, model_version, event_id, predicted_price, price_low, price_high, deal_rating,
                          asking_price, event_time, scored_at, listing) FROM STDIN (FORMAT BINARY)
"""
MERGE_STAGED: Final = """
INSERT INTO predictions (listing_id, model_version, event_id, predicted_price, price_low, price_high, deal_rating,
                         asking_price, event_time, scored_at, listing)
SELECT listing_id, model_version, event_id, predicted_price, price_low, price_high, deal_rating, asking_price,
       event_time, scored_at, listing::jsonb
FROM predictions_staging
ON CONFLICT (listing_id, model_version) DO UPDATE
SET event_id = EXCLUDED.event_id, predicted_price = EXCLUDED.predicted_price,
    price_low = EXCLUDED.price_low, price_high = EXCLUDED.price_high, deal_rating = EXCLUDED.deal_rating,
    asking_price = EXCLUDED.asking_price, event_time = EXCLUDED.event_time,
    scored_at = EXCLUDED.scored_at, listing = EXCLUDED.listing, stored_at = clock_timestamp()
WHERE EXCLUDED.event_time > predictions.event_time
"""

INSERT_DEAD_LETTERS: Final = """
INSERT INTO dead_letters (topic, partition, "offset", key, payload, reason, failed_at)
SELECT * FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::bytea[], %s::bytea[],
                     %s::text[], %s::timestamptz[])
ON CONFLICT DO NOTHING
"""


_STAGED: weakref.WeakSet[psycopg.AsyncConnection[Any]] = weakref.WeakSet()  # sessions with the staging table


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One row of ``predictions`` (field order = ``PREDICTION_COLUMNS``; ``listing`` is its JSON text)."""

    listing_id: str
    model_version: int
    event_id: Any
    predicted_price: float
    price_low: float
    price_high: float
    deal_rating: str | None
    asking_price: float | None
    event_time: datetime
    scored_at: datetime
    listing: str


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
    """Create tables and indexes if missing, and grant the read-only role SELECT."""
    with conn.transaction():
        conn.execute(SCHEMA)
        conn.execute(GRANT_READER)


def latest_per_listing(rows: Sequence[PredictionRow]) -> list[PredictionRow]:
    """Keep the newest event per (listing, version): one upsert may not touch a row twice."""
    newest: dict[tuple[str, int], PredictionRow] = {}
    for row in rows:
        key = (row.listing_id, row.model_version)
        if key not in newest or row.event_time >= newest[key].event_time:
            newest[key] = row
    return list(newest.values())


def _columns(rows: Sequence[Any]) -> list[list[Any]]:
    """Row dataclasses → one list per field, in declaration order (the ``unnest`` parameters)."""
    names = [f.name for f in fields(rows[0])] if rows else []
    return [[getattr(row, name) for row in rows] for name in names]


def staged_rows(rows: Sequence[PredictionRow]) -> list[tuple[Any, ...]]:
    """The rows to COPY: the newest per (listing, version), as tuples in ``PREDICTION_COLUMNS`` order."""
    return [astuple_row(row) for row in latest_per_listing(rows)]


def astuple_row(row: PredictionRow) -> tuple[Any, ...]:
    return (row.listing_id, row.model_version, row.event_id, row.predicted_price, row.price_low, row.price_high,
            row.deal_rating, row.asking_price, row.event_time, row.scored_at, row.listing)  # fmt: skip


def dead_letter_params(rows: Sequence[DeadLetterRow]) -> list[list[Any]]:
    return _columns(rows)


async def write_batch(
    conn: psycopg.AsyncConnection[Any],
    predictions: Sequence[PredictionRow],
    dead_letters: Sequence[DeadLetterRow],
) -> None:
    """Store one micro-batch in one transaction: predictions by binary COPY into the staging table and one
    merge (upsert keyed by listing and version), dead letters by one insert keyed by their Kafka coordinate."""
    staged = conn in _STAGED  # the temporary table lives as long as the session, once its creation committed
    async with conn.transaction():
        if predictions:
            if not staged:
                await conn.execute(STAGING_TABLE)
            async with conn.cursor().copy(COPY_STAGING) as copy:
                copy.set_types(list(STAGING_TYPES))
                for row in staged_rows(predictions):
                    await copy.write_row(row)
            await conn.execute(MERGE_STAGED)
        if dead_letters:
            await conn.execute(INSERT_DEAD_LETTERS, dead_letter_params(dead_letters))
    if predictions:
        _STAGED.add(conn)


def write_predictions(conn: psycopg.Connection[Any], predictions: Sequence[PredictionRow]) -> None:
    """The synchronous twin of ``write_batch`` for predictions (batch jobs such as rescore)."""
    with conn.transaction():
        conn.execute(STAGING_TABLE)
        with conn.cursor().copy(COPY_STAGING) as copy:
            copy.set_types(list(STAGING_TYPES))
            for row in staged_rows(predictions):
                copy.write_row(row)
        conn.execute(MERGE_STAGED)

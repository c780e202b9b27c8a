"""Bounded, read-only queries behind the dashboard (each uses an index or a LIMIT)."""

from __future__ import annotations

from typing import Any, Final

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

LATEST_LIMIT: Final = 50

LATEST_PREDICTIONS: Final = """
SELECT listing_id, model_version, predicted_price, price_low, price_high, deal_rating, asking_price,
       event_time, scored_at, stored_at,
       listing->>'year' AS year, listing->>'manufacturer' AS manufacturer, listing->>'model' AS model,
       listing->>'odometer' AS odometer, listing->>'state' AS state
FROM predictions ORDER BY scored_at DESC LIMIT %s
"""

COUNTS: Final = """
SELECT (SELECT count(*) FROM predictions) AS scored,
       (SELECT count(*) FROM dead_letters) AS dead_lettered,
       (SELECT count(*) FROM predictions WHERE scored_at > now() - interval '60 seconds') AS last_minute
"""


def latest_predictions(pool: ConnectionPool, limit: int = LATEST_LIMIT) -> list[dict[str, Any]]:
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(LATEST_PREDICTIONS, [limit]).fetchall()


def counts(pool: ConnectionPool) -> dict[str, int]:
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(COUNTS).fetchone()
    return {k: int(v) for k, v in (row or {}).items()}


DRIFT_WINDOWS: Final = """
SELECT id, window_end, closed_at, model_version, rows, labelled_rows, drift_share, price_drift, mae, coverage,
       fired, retrain_requested
FROM drift_windows ORDER BY id DESC LIMIT %s
"""

MODEL_EVENTS: Final = """
SELECT at, kind, version, champion, reason FROM model_events ORDER BY at DESC LIMIT %s
"""


def drift_windows(pool: ConnectionPool, limit: int = 200) -> list[dict[str, Any]]:
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return list(reversed(cur.execute(DRIFT_WINDOWS, [limit]).fetchall()))


def model_events(pool: ConnectionPool, limit: int = 50) -> list[dict[str, Any]]:
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(MODEL_EVENTS, [limit]).fetchall()

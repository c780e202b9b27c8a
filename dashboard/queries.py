"""Bounded, read-only queries behind the dashboard: each one reads through an index or stops at a LIMIT.

All go through the read-only role's pool; every parameter is bound by psycopg, never formatted in.
"""

from __future__ import annotations

from typing import Any, Final

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from training.live_gate import LIVE_ROWS
from training.shadow import ACTIVE_SHADOW, ActiveShadow, shadow_of

LATEST_LIMIT: Final = 50
RECENT_DEAD_LETTERS: Final = 100_000  # counts by reason look at this many of the newest dead letters

LATEST_PREDICTIONS: Final = """
SELECT source, listing_id, model_version, predicted_price, price_low, price_high, deal_rating, asking_price,
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

# Listings per second and produced → stored latency, in 10-second buckets over the last minutes.
THROUGHPUT: Final = """
SELECT date_bin('10 seconds', scored_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       count(*) / 10.0 AS per_second,
       1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - event_time)) AS p50_ms,
       1000 * percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - event_time)) AS p95_ms
FROM predictions
WHERE scored_at > now() - make_interval(mins => %s)
GROUP BY bucket ORDER BY bucket
"""

DRIFT_WINDOWS: Final = """
SELECT id, window_start, window_end, closed_at, model_version, rows, labelled_rows, drift_share, price_drift,
       mae, coverage, fired, retrain_requested
FROM drift_windows ORDER BY id DESC LIMIT %s
"""

DRIFT_FEATURES: Final = """
SELECT w.id AS window_id, w.window_end, f.feature, f.score, f.drifted
FROM (SELECT id, window_end FROM drift_windows ORDER BY id DESC LIMIT %s) AS w
JOIN drift_features AS f ON f.window_id = w.id
ORDER BY w.id, f.feature
"""

RETRAIN_REQUESTS: Final = """
SELECT request_id, requested_at, reason, champion_version FROM retrain_requests ORDER BY requested_at DESC LIMIT %s
"""

MODEL_EVENTS: Final = """
SELECT at, kind, version, champion, reason, metrics->>'role' AS role, metrics->>'outcome' AS outcome
FROM model_events ORDER BY at DESC LIMIT %s
"""

VERSION_COUNTS: Final = """
SELECT model_version, count(*) AS listings FROM predictions GROUP BY model_version ORDER BY model_version
"""

DEAD_LETTERS: Final = """
SELECT failed_at, topic, partition, "offset", substring(key FROM 1 FOR 80) AS key,
       substring(payload FROM 1 FOR %s) AS payload, coalesce(payload_bytes, octet_length(payload)) AS size, reason
FROM dead_letters ORDER BY failed_at DESC LIMIT %s
"""

DEAD_LETTER_REASONS: Final = """
SELECT split_part(reason, ':', 1) AS field, count(*) AS events, min(reason) AS example
FROM (SELECT reason FROM dead_letters ORDER BY failed_at DESC LIMIT %s) AS recent
GROUP BY field ORDER BY events DESC, field LIMIT 25
"""


def _all(pool: ConnectionPool, statement: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(statement, params).fetchall()


def latest_predictions(pool: ConnectionPool, limit: int = LATEST_LIMIT) -> list[dict[str, Any]]:
    return _all(pool, LATEST_PREDICTIONS, [limit])


def counts(pool: ConnectionPool) -> dict[str, int]:
    rows = _all(pool, COUNTS)
    return {k: int(v) for k, v in (rows[0] if rows else {}).items()}


def throughput(pool: ConnectionPool, minutes: int = 10) -> list[dict[str, Any]]:
    return _all(pool, THROUGHPUT, [minutes])


def drift_windows(pool: ConnectionPool, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` windows, oldest first."""
    return list(reversed(_all(pool, DRIFT_WINDOWS, [limit])))


def drift_features(pool: ConnectionPool, windows: int = 60) -> list[dict[str, Any]]:
    return _all(pool, DRIFT_FEATURES, [windows])


def retrain_requests(pool: ConnectionPool, limit: int = 100) -> list[dict[str, Any]]:
    return _all(pool, RETRAIN_REQUESTS, [limit])


def model_events(pool: ConnectionPool, limit: int = 50) -> list[dict[str, Any]]:
    return _all(pool, MODEL_EVENTS, [limit])


def version_counts(pool: ConnectionPool) -> dict[int, int]:
    return {int(r["model_version"]): int(r["listings"]) for r in _all(pool, VERSION_COUNTS)}


def dead_letters(pool: ConnectionPool, limit: int = 50, preview_bytes: int = 300) -> list[dict[str, Any]]:
    return _all(pool, DEAD_LETTERS, [preview_bytes, limit])


def dead_letter_reasons(pool: ConnectionPool, recent: int = RECENT_DEAD_LETTERS) -> list[dict[str, Any]]:
    return _all(pool, DEAD_LETTER_REASONS, [recent])


def active_shadow(pool: ConnectionPool, model_name: str) -> ActiveShadow | None:
    """The version scoring in shadow, as ``model_events`` records it (the live gate's own query)."""
    with pool.connection() as conn:
        return shadow_of(conn.execute(ACTIVE_SHADOW, [model_name]).fetchone())


def shadow_live_rows(pool: ConnectionPool, shadow: ActiveShadow) -> list[tuple[Any, ...]]:
    """Both models' prices of the listings the shadow priced (the live gate's own query: bounded by the
    shadow period, which the gate ends after ``PRICEMYRIDE_SHADOW_MIN_ROWS`` labelled listings)."""
    with pool.connection() as conn:
        return conn.execute(LIVE_ROWS, [shadow.version, shadow.since]).fetchall()

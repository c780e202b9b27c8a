"""Bounded, read-only queries behind the dashboard: each one reads through an index or stops at a LIMIT.

All go through the read-only role's pool; every parameter is bound by psycopg, never formatted in.
"""

from __future__ import annotations

from typing import Any, Final

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dashboard.deal_query import PAGE_SIZE, DealFilters, count_query, page_query
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

# The total is the drift monitor's count up to its last refresh (``market_versions``: counting the whole table on
# every refresh took 0.3 s at 5,000,000 rows) plus the predictions scored since, counted here through the
# scored_at index. A prediction scored before the refresh but committed after it shows at the next one.
SINCE_REFRESH: Final = "coalesce((SELECT scored_through FROM market_refresh), '-infinity')"
COUNTS: Final = f"""
SELECT (SELECT coalesce(sum(predictions), 0) FROM market_versions)
       + (SELECT count(*) FROM predictions WHERE scored_at > {SINCE_REFRESH}) AS scored,
       (SELECT count(*) FROM dead_letters) AS dead_lettered,
       (SELECT count(*) FROM predictions WHERE scored_at > now() - interval '60 seconds') AS last_minute
"""  # noqa: S608 - built from the constant above only

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
SELECT at, kind, version, champion, reason, metrics->>'role' AS role, metrics->>'outcome' AS outcome,
       metrics ? 'live' AS live
FROM model_events ORDER BY at DESC LIMIT %s
"""

VERSION_COUNTS: Final = f"""
SELECT model_version, sum(listings) AS listings FROM (
    SELECT model_version, predictions AS listings FROM market_versions
    UNION ALL
    SELECT model_version, count(*) FROM predictions WHERE scored_at > {SINCE_REFRESH} GROUP BY model_version
) AS counted GROUP BY model_version ORDER BY model_version
"""  # noqa: S608 - built from the constant above only

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


# The Market page reads the rollups only (``monitoring.market``): a segment's periods by primary key.
MARKET_PERIODS: Final = """
SELECT period, listings, priced, retention, asking_median, fair_median, great, good, fair, high, overpriced, unsure,
       model_version
FROM market_cells WHERE axis = %s AND segment = %s AND value = %s AND period_kind = %s
ORDER BY period DESC LIMIT %s
"""
MARKET_VALUES: Final = """
SELECT value FROM market_cells WHERE axis = %s AND segment = %s AND period_kind = 'week'
GROUP BY value ORDER BY sum(listings) DESC, value LIMIT %s
"""
# The listing look-up: every valuation of one listing, the newest model first (its primary key's order).
VALUATIONS: Final = """
SELECT model_version, predicted_price, price_low, price_high, deal_rating, asking_price, event_time, scored_at,
       stored_at, listing
FROM predictions WHERE source = %s AND listing_id = %s ORDER BY model_version DESC LIMIT 100
"""
MARKET_REFRESH: Final = "SELECT scored_through, refreshed_at, seconds, listings, periods FROM market_refresh"


def market_periods(pool: ConnectionPool, axis: str, segment: str, value: str, kind: str,
                   limit: int = 400) -> list[dict[str, Any]]:  # fmt: skip
    """The newest ``limit`` periods of one segment, oldest first."""
    return list(reversed(_all(pool, MARKET_PERIODS, [axis, segment, value, kind, limit])))


def market_values(pool: ConnectionPool, axis: str, segment: str, limit: int = 500) -> list[str]:
    """A segment's values, the most listed first."""
    return [r["value"] for r in _all(pool, MARKET_VALUES, [axis, segment, limit])]


def market_refresh(pool: ConnectionPool) -> dict[str, Any] | None:
    rows = _all(pool, MARKET_REFRESH)
    return rows[0] if rows else None


def deals(pool: ConnectionPool, filters: DealFilters, page: int, size: int = PAGE_SIZE) -> list[dict[str, Any]]:
    """One page of the deal finder: the best discount to the fair price first."""
    query, params = page_query(filters, size, page * size)
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def deal_count(pool: ConnectionPool, filters: DealFilters) -> int:
    """Listings matching the filters, counted up to COUNT_CAP + 1."""
    query, params = count_query(filters)
    with pool.connection() as conn:
        row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


# The sources of market_listings, one index probe each (a loose scan of the primary key, not a scan of the table).
SOURCES: Final = """
WITH RECURSIVE found (source) AS (
    (SELECT source FROM market_listings ORDER BY source LIMIT 1)
    UNION ALL
    SELECT (SELECT m.source FROM market_listings AS m WHERE m.source > found.source ORDER BY m.source LIMIT 1)
    FROM found WHERE found.source IS NOT NULL
)
SELECT source FROM found WHERE source IS NOT NULL LIMIT 200
"""


def sources(pool: ConnectionPool) -> list[str]:
    return [r["source"] for r in _all(pool, SOURCES)]


def valuations(pool: ConnectionPool, source: str, listing_id: str) -> list[dict[str, Any]]:
    return _all(pool, VALUATIONS, [source, listing_id])

"""The market rollups the analysts' Market page reads (``market_cells``), kept by the drift monitor.

A refresh folds the valuations scored since the last one into ``market_listings`` (one row per listing:
its latest valuation, so a listing valued again by a new model counts once; its asking price only where
it would be a training label: no token, anchor or absurd prices) and recomputes, exactly, the
cells of every period those listings fall in — per day and per week, on two time axes (the site's posting
date, and the day the listing reached the stream), for the whole market and per make, model, body type and
state. Pages then read a few hundred cells by primary key, however many predictions are stored. It also
counts the stored predictions per model version (``market_versions``) for the Live and Models pages.

Cost: a refresh reads the new valuations and every listing of the periods they touch (for a live stream:
today, this week, and the days its listings were posted), which grows with the listings of a week; and it
counts the predictions per model version, which grows with the table (an upsert moves a row's scored_at, so
the count cannot be kept incrementally). ``make bench`` measures it.

Staleness: a valuation shows on the Market page at most ``PRICEMYRIDE_MARKET_REFRESH_S`` plus one refresh
after it is stored. Each refresh re-reads the last ``OVERLAP`` of scores, so a worker's transaction that
commits late is folded in by the next one (re-reading is harmless: a listing's row changes only for a newer
score). One refresh at a time across monitors (an advisory lock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import sql

from pricemyride.storage import FAMILY, MAKE, YEAR
from training.cleaning import ANCHOR_PRICES, MAX_PRICE, MIN_PRICE

OVERLAP: Final = timedelta(minutes=2)
LOCK: Final = 0x70_6D_6D_6B  # the advisory lock key of market refreshes ("pmmk")
AXES: Final = {"posted": "posted_on", "arrived": "arrived_on"}
EPOCH: Final = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
# An asking price counts in the index as it would count as a label: token, anchor and absurd prices do not.
LABEL_RULES: Final = {"min_price": MIN_PRICE, "max_price": MAX_PRICE, "anchors": sorted(ANCHOR_PRICES)}

# market_listings' columns, as FOLD selects them; a listing's row changes only for a newer score.
COLUMNS: Final = ("source", "listing_id", "posted_on", "arrived_on", "make", "family", "model", "year", "odometer",
                  "body", "state", "asking_price", "predicted_price", "price_low", "price_high", "discount",
                  "deal_rating", "model_version", "scored_at")  # fmt: skip
DISCOUNT: Final = COLUMNS.index("discount")  # the one column FOLD computes from the others
UPDATES: Final = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in ("source", "listing_id"))
FOLD: Final = f"""
WITH fresh AS (
    SELECT {", ".join(COLUMNS[:DISCOUNT])}, (predicted_price - asking_price) / nullif(predicted_price, 0) AS discount,
           {", ".join(COLUMNS[DISCOUNT + 1 :])}
    FROM (SELECT DISTINCT ON (source, listing_id) source, listing_id,
                 ((listing->>'posting_date')::timestamptz AT TIME ZONE 'UTC')::date AS posted_on,
                 (event_time AT TIME ZONE 'UTC')::date AS arrived_on,
                 {MAKE} AS make, {FAMILY} AS family, listing->>'model' AS model, {YEAR} AS year,
                 (listing->>'odometer')::float8 AS odometer,
                 listing->>'type' AS body, listing->>'state' AS state,
                 CASE WHEN asking_price BETWEEN %(min_price)s AND %(max_price)s AND asking_price <> ALL(%(anchors)s)
                      THEN asking_price END AS asking_price,
                 predicted_price, price_low, price_high, deal_rating, model_version, scored_at
          FROM predictions WHERE scored_at > %(since)s AND scored_at <= %(through)s
          ORDER BY source, listing_id, scored_at DESC) AS latest
), replaced AS (
    SELECT m.posted_on, m.arrived_on FROM market_listings AS m JOIN fresh USING (source, listing_id)
    WHERE fresh.scored_at > m.scored_at
), folded AS (
    INSERT INTO market_listings ({", ".join(COLUMNS)}) SELECT {", ".join(COLUMNS)} FROM fresh
    ON CONFLICT (source, listing_id) DO UPDATE
    SET {UPDATES}
    WHERE EXCLUDED.scored_at > market_listings.scored_at
    RETURNING posted_on, arrived_on
), touched AS (SELECT * FROM folded UNION ALL SELECT * FROM replaced)
SELECT (SELECT count(*) FROM folded),
       ARRAY(SELECT DISTINCT posted_on FROM touched WHERE posted_on IS NOT NULL),
       ARRAY(SELECT DISTINCT arrived_on FROM touched)
"""  # noqa: S608 - built from the column names above only

# One axis' cells of the given days and weeks: {day} is the axis' column of market_listings.
CELLS: Final = """
WITH rows AS (
    SELECT 'day' AS kind, {day} AS period, l.* FROM market_listings AS l WHERE {day} = ANY(%(days)s)
    UNION ALL
    SELECT 'week', w.week, l.* FROM unnest(%(weeks)s::date[]) AS w (week)
    JOIN market_listings AS l ON {day} >= w.week AND {day} < w.week + 7
), grouped AS (
    SELECT kind, period,
           CASE WHEN GROUPING(family) = 0 THEN 'model' WHEN GROUPING(make) = 0 THEN 'make'
                WHEN GROUPING(body) = 0 THEN 'type' WHEN GROUPING(state) = 0 THEN 'state' ELSE 'all' END AS segment,
           CASE WHEN GROUPING(family) = 0 THEN make || ' ' || family WHEN GROUPING(make) = 0 THEN make
                WHEN GROUPING(body) = 0 THEN body WHEN GROUPING(state) = 0 THEN state ELSE '' END AS value,
           count(*) AS listings, count(asking_price) AS priced,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY asking_price / nullif(predicted_price, 0)) AS retention,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY asking_price) AS asking_median,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY predicted_price) AS fair_median,
           count(*) FILTER (WHERE deal_rating = 'great') AS great, count(*) FILTER (WHERE deal_rating = 'good') AS good,
           count(*) FILTER (WHERE deal_rating = 'fair') AS fair, count(*) FILTER (WHERE deal_rating = 'high') AS high,
           count(*) FILTER (WHERE deal_rating = 'overpriced') AS overpriced,
           count(*) FILTER (WHERE deal_rating NOT IN ('great', 'good', 'fair', 'high', 'overpriced')
                                OR deal_rating IS NULL) AS unsure,
           mode() WITHIN GROUP (ORDER BY model_version) AS model_version
    FROM rows
    GROUP BY GROUPING SETS ((kind, period), (kind, period, make), (kind, period, make, family),
                            (kind, period, body), (kind, period, state))
)
INSERT INTO market_cells (axis, segment, value, period_kind, period, listings, priced, retention, asking_median,
                          fair_median, great, good, fair, high, overpriced, unsure, model_version)
SELECT %(axis)s, segment, value, kind, period, listings, priced, retention, asking_median, fair_median, great, good,
       fair, high, overpriced, unsure, model_version
FROM grouped WHERE value IS NOT NULL
"""
CLEAR: Final = """
DELETE FROM market_cells WHERE axis = %(axis)s
  AND ((period_kind = 'day' AND period = ANY(%(days)s)) OR (period_kind = 'week' AND period = ANY(%(weeks)s)))
"""
COUNT_VERSIONS: Final = """
WITH counted AS (SELECT model_version, count(*) AS predictions FROM predictions WHERE scored_at <= %(through)s
                 GROUP BY model_version),
     gone AS (DELETE FROM market_versions WHERE model_version NOT IN (SELECT model_version FROM counted))
INSERT INTO market_versions SELECT * FROM counted
ON CONFLICT (model_version) DO UPDATE SET predictions = EXCLUDED.predictions
"""
RECORD: Final = """
INSERT INTO market_refresh (one, scored_through, refreshed_at, seconds, listings, periods)
VALUES (true, %s, now(), %s, %s, %s)
ON CONFLICT (one) DO UPDATE SET scored_through = EXCLUDED.scored_through, refreshed_at = EXCLUDED.refreshed_at,
    seconds = EXCLUDED.seconds, listings = EXCLUDED.listings, periods = EXCLUDED.periods
"""


@dataclass(frozen=True)
class Refreshed:
    listings: int  # valuations folded into market_listings
    periods: int  # (axis, kind, period) cells recomputed
    seconds: float


def weeks(days: list[date]) -> list[date]:
    """The Mondays of the weeks the days fall in."""
    return sorted({d - timedelta(days=d.weekday()) for d in days})


def recompute(conn: psycopg.Connection[Any], axis: str, days: list[date]) -> int:
    """Replace one axis' day and week cells of ``days``; how many periods were recomputed."""
    if not days:
        return 0
    params = {"axis": axis, "days": days, "weeks": weeks(days)}
    conn.execute(CLEAR, params)
    conn.execute(sql.SQL(CELLS).format(day=sql.Identifier("l", AXES[axis])), params)
    return len(days) + len(params["weeks"])


def watermark(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("SELECT scored_through FROM market_refresh").fetchone()
    return row[0] - OVERLAP if row else EPOCH


def refresh(conn: psycopg.Connection[Any]) -> Refreshed | None:
    """Fold new valuations in and recompute the periods they touch, in one transaction; None when another
    refresh holds the lock."""
    started = time.perf_counter()
    with conn.transaction():
        locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK]).fetchone()
        if not locked or not locked[0]:
            return None
        through = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        row = conn.execute(FOLD, {"since": watermark(conn), "through": through, **LABEL_RULES}).fetchone()
        folded, posted, arrived = row if row else (0, [], [])
        periods = recompute(conn, "posted", posted) + recompute(conn, "arrived", arrived)
        conn.execute(COUNT_VERSIONS, {"through": through})
        seconds = time.perf_counter() - started
        conn.execute(RECORD, [through, seconds, folded, periods])
    return Refreshed(int(folded), periods, seconds)

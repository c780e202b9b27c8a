"""Dashboard page cost on a large database: each page's refresh (its bounded queries through the read-only
role, figure building and JSON encoding — the whole server side of a Dash callback) timed on databases of
1,000,000 and 5,000,000 prediction rows and, as the baseline in the same run, on one of 10,000 rows.

The Market page reads rollups (``monitoring.market``): the bench also times their first fold of the whole
table (the backfill) and a steady refresh after 2,000 new valuations — what its staleness costs."""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from plotly.io.json import to_json_plotly
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from dashboard.page import Context
from dashboard.pages import dead_letters, deals, drift, live, lookup, models
from dashboard.pages import market as market_page
from dashboard.registry import RegistryView
from infra.harness import drop_database, world_env
from monitoring import market
from pricemyride.bootstrap import prepare
from pricemyride.settings import Settings

log = logging.getLogger("bench.dashboard")
SPREAD_S = 365 * 24 * 3600  # the seeded listings arrived (and were scored) evenly over the last year
# Posted within a week before they arrived. A steady refresh folds in NEW_VALUATIONS that arrived now: it
# recomputes the periods they touch (today, this week, the last week's posting days), not the whole year.

SEED_PREDICTIONS = """
INSERT INTO predictions (listing_id, model_version, event_id, predicted_price, price_low, price_high, deal_rating,
                         asking_price, event_time, scored_at, stored_at, listing)
SELECT 'bench-' || g, 1 + g %% 3, gen_random_uuid(), p, p * 0.8, p * 1.25,
       (ARRAY['great', 'good', 'fair', 'high', 'overpriced'])[1 + g %% 5], p * 0.95,
       t - interval '60 milliseconds', t, t + interval '15 milliseconds',
       jsonb_build_object('id', 'bench-' || g, 'manufacturer', (ARRAY['ford', 'toyota', 'honda', 'bmw'])[1 + g %% 4],
                          'model', 'm' || g %% 50 || ' trim', 'year', 1995 + g %% 28, 'odometer', g %% 250000,
                          'state', (ARRAY['ca', 'tx', 'ny', 'fl', 'wa'])[1 + g %% 5],
                          'type', (ARRAY['sedan', 'suv', 'pickup', 'coupe'])[1 + g %% 4], 'price', p * 0.95,
                          'posting_date', to_char(t - (g %% 7) * interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'))
FROM (SELECT g, 3000 + (g %% 45000)::float8 AS p, now() - (%s::float8 * g / %s) * interval '1 second' AS t
      FROM generate_series(1, %s) AS g) AS s
"""
SEED_DEAD_LETTERS = """
INSERT INTO dead_letters (topic, partition, "offset", key, payload, reason, failed_at)
SELECT 'listings', g %% 4, g, convert_to('bad-' || g, 'UTF8'), convert_to('{"price": "cheap"}', 'UTF8'),
       (ARRAY['price: expected a number', 'year: expected a whole year', 'listing: expected a JSON object'])
       [1 + g %% 3], now() - g * interval '1 second'
FROM generate_series(1, %(dead)s) AS g
"""
SEED_DRIFT = """
WITH w AS (
    INSERT INTO drift_windows (window_start, window_end, model_version, rows, labelled_rows, drift_share,
                               prediction_drift, price_drift, mae, coverage, fired)
    SELECT now() - (g + 1) * interval '5 minutes', now() - g * interval '5 minutes', 1, 2000, 1900,
           (g %% 10) / 10.0, 0.1, 0.05, 3500 + g %% 700, 0.78,
           CASE WHEN g %% 10 > 6 THEN ARRAY['asking_price'] ELSE '{}' END
    FROM generate_series(1, %(windows)s) AS g RETURNING id)
INSERT INTO drift_features (window_id, feature, score, drifted)
SELECT w.id, f, random(), random() > 0.7 FROM w,
       unnest(ARRAY['manufacturer', 'model', 'year', 'odometer', 'condition', 'cylinders', 'fuel', 'title_status',
                    'transmission', 'drive', 'size', 'type', 'paint_color', 'state']) AS f
"""
SEED_MODEL_EVENTS = """
INSERT INTO model_events (kind, version, champion, reason)
SELECT (ARRAY['promoted', 'rejected'])[1 + g %% 2], g, g - 1, 'bench' FROM generate_series(1, 40) AS g
"""


def seed_world(base: Settings, name: str, folder: Path, rows: int) -> Settings:
    os.environ.update(world_env(base, name, folder / name))
    settings = Settings()
    prepare(settings)
    started = time.perf_counter()
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute(SEED_PREDICTIONS, [SPREAD_S, rows, rows])
        for statement in (SEED_DEAD_LETTERS, SEED_DRIFT, SEED_MODEL_EVENTS):
            conn.execute(statement, {"dead": max(rows // 50, 100), "windows": 500})
        conn.execute("VACUUM ANALYZE")
    log.info("seeded %s with %d predictions in %.0f s", name, rows, time.perf_counter() - started)
    return settings


def time_page(refresh: Callable[[], dict[str, Any]], calls: int) -> dict[str, float]:
    """Median, max and first call (cold) in milliseconds of one page refresh, JSON encoding included."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        to_json_plotly(refresh())
        times.append(1000 * (time.perf_counter() - started))
    return {"median_ms": statistics.median(times), "max_ms": max(times), "first_ms": times[0], "calls": calls}


NEW_VALUATIONS = 2_000  # a steady refresh folds in this many (two seconds of the stream at 1,000/s)


def refresh_costs(settings: Settings) -> dict[str, float]:
    """Seconds of the rollups' first fold of the whole table, and of a refresh after NEW_VALUATIONS more."""
    url = settings.database_url.get_secret_value()
    with psycopg.connect(url) as conn:
        backfill = market.refresh(conn)
        conn.execute(SEED_PREDICTIONS.replace("'bench-' || g", "'new-' || g"), [1, NEW_VALUATIONS, NEW_VALUATIONS])
        conn.commit()
        steady = market.refresh(conn)
    if backfill is None or steady is None:
        raise RuntimeError("market refresh: expected the bench's own database to have no other refresher, got a lock")
    return {"backfill_s": backfill.seconds, "steady_s": steady.seconds, "steady_listings": steady.listings,
            "steady_periods": steady.periods}  # fmt: skip


def pages(settings: Settings, calls: int) -> dict[str, dict[str, float]]:
    pool = ConnectionPool(settings.reader_database_url.get_secret_value(), min_size=1, max_size=2, open=True)
    registry = RegistryView(settings)
    registry.refresh_versions()  # what the dashboard's start-up warm() does before the first page
    ctx = Context(settings, pool, registry)
    try:
        return {
            "live": time_page(lambda: live.refresh(ctx), calls),
            "market": time_page(lambda: market_page.refresh(ctx, "posted", "week", "all", None), calls),
            "market_segment": time_page(lambda: segment(ctx), calls),
            "deals": time_page(lambda: deals.refresh(ctx, {"ratings": ["great", "good"], "since": "30"}, 0), calls),
            "deals_filtered": time_page(lambda: deals.refresh(ctx, FILTERED, 3), calls),
            "deals_none": time_page(lambda: deals.refresh(ctx, NOTHING, 0), calls),
            "lookup": time_page(lambda: lookup.looked_up(ctx, "unknown", "bench-12345"), calls),
            "drift": time_page(lambda: drift.refresh(ctx), calls),
            "models": time_page(lambda: models.refresh(ctx), calls),
            "dead_letters": time_page(lambda: dead_letters.refresh(ctx), calls),
        }
    finally:
        pool.close()


# Six filters that match (the seed's columns cycle together: this make, model and state come with these ratings).
FILTERED = {"make": "ford", "family": "m9", "year_from": 2000, "price_to": 40_000, "state": "wa", "since": "365",
            "ratings": ["high", "overpriced"]}  # fmt: skip
NOTHING = {"make": "ford", "family": "m8", "since": "365"}  # no ford is an m8 in the seed: a filter that matches none


def segment(ctx: Context) -> dict[str, Any]:
    """A segment change: the model segment's values, then the most listed one's daily index."""
    found = market_page.values(ctx, "posted", "model")
    return market_page.refresh(ctx, "posted", "day", "model", found["value"])


def bench_dashboard(base: Settings, folder: Path, stamp: str, sizes: tuple[int, ...], repeats: int) -> dict[str, Any]:
    calls = 5 * repeats
    results: dict[str, Any] = {"sizes": list(sizes), "baseline_rows": 10_000, "spread_hours": SPREAD_S / 3600}
    small = seed_world(base, f"bench-{stamp}-dash-small", folder, 10_000)
    results["baseline_refresh"] = refresh_costs(small)
    results["baseline"] = pages(small, calls)
    for rows in sizes:
        world = seed_world(base, f"bench-{stamp}-dash-{rows}", folder, rows)
        results[f"refresh_{rows}"] = refresh_costs(world)
        results[f"at_{rows}"] = timed = pages(world, calls)
        results[f"ratio_{rows}"] = {page: timed[page]["median_ms"] / results["baseline"][page]["median_ms"]
                                    for page in timed}  # fmt: skip
        drop_world(base, world)
    results["slowest_page_median_ms"] = max(r["median_ms"] for n in sizes for r in results[f"at_{n}"].values())
    return results


def drop_world(base: Settings, world: Settings) -> None:
    """The large worlds take gigabytes: each is dropped once measured."""
    drop_database(base, str(conninfo_to_dict(world.database_url.get_secret_value())["dbname"]))


def markdown(d: dict[str, Any]) -> list[str]:
    sizes = d["sizes"]
    head = " | ".join(f"{n:,} rows: median ms (max) | ratio" for n in sizes)
    lines = [
        f"## Dashboard pages ({' and '.join(f'{n:,}' for n in sizes)} prediction rows arrived over "
        f"{d['spread_hours'] / 24:.0f} days; baseline {d['baseline_rows']:,} rows, same run)", "",
        "Server side of one refresh: the page's queries (read-only role), figures and JSON encoding. `market`: the "
        "whole market's weekly index; `market_segment`: a segment change (the model segment's values, then the "
        "most listed model's daily index); `deals`: the deal finder's first page as it opens, `deals_filtered`: "
        "its fourth page under six filters, `deals_none`: a make and model no listing has; `lookup`: one "
        "listing's valuations, factors and comparables.", "",
        f"| page | baseline median ms | {head} |", "|---|---:|" + "---:|---:|" * len(sizes),
    ]  # fmt: skip
    for page, base in d["baseline"].items():
        cells = " | ".join(f"{d[f'at_{n}'][page]['median_ms']:.0f} ({d[f'at_{n}'][page]['max_ms']:.0f}) | "
                           f"{d[f'ratio_{n}'][page]:.1f}×" for n in sizes)  # fmt: skip
        lines.append(f"| {page} | {base['median_ms']:.0f} | {cells} |")
    lines += ["", "Market rollups (`monitoring.market`): seconds of the first fold of the whole table, and of a "
              f"steady refresh after {NEW_VALUATIONS:,} new valuations (the Market page's staleness is at most "
              "PRICEMYRIDE_MARKET_REFRESH_S plus this).", "", "| stored predictions | backfill s | steady refresh s |",
              "|---:|---:|---:|"]  # fmt: skip
    for n, key in ((d["baseline_rows"], "baseline_refresh"), *((n, f"refresh_{n}") for n in sizes)):
        lines.append(f"| {n:,} | {d[key]['backfill_s']:.1f} | {d[key]['steady_s']:.2f} |")
    return [*lines, ""]

"""Dashboard page cost on a large database: each page's refresh (its bounded queries through the read-only
role, figure building and JSON encoding — the whole server side of a Dash callback) timed on a database
of 1,000,000 prediction rows and, as the baseline in the same run, on one of 10,000 rows."""

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
from psycopg_pool import ConnectionPool

from dashboard.app import dead_letters_outputs, drift_outputs, live_outputs, models_outputs
from dashboard.registry import RegistryView
from infra.harness import world_env
from pricemyride.bootstrap import prepare
from pricemyride.settings import Settings

log = logging.getLogger("bench.dashboard")
SPREAD_S = 24 * 3600  # the seeded predictions were scored evenly over the last 24 hours

SEED_PREDICTIONS = """
INSERT INTO predictions (listing_id, model_version, event_id, predicted_price, price_low, price_high, deal_rating,
                         asking_price, event_time, scored_at, stored_at, listing)
SELECT 'bench-' || g, 1 + g %% 3, gen_random_uuid(), p, p * 0.8, p * 1.25,
       (ARRAY['great', 'good', 'fair', 'high', 'overpriced'])[1 + g %% 5], p * 0.95,
       t - interval '60 milliseconds', t, t + interval '15 milliseconds',
       jsonb_build_object('id', 'bench-' || g, 'manufacturer', (ARRAY['ford', 'toyota', 'honda', 'bmw'])[1 + g %% 4],
                          'model', 'model ' || g %% 50, 'year', 1995 + g %% 28, 'odometer', g %% 250000,
                          'state', 'ca', 'price', p * 0.95)
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


def time_page(refresh: Callable[[], tuple[Any, ...]], calls: int) -> dict[str, float]:
    """Median, max and first call (cold) in milliseconds of one page refresh, JSON encoding included."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        to_json_plotly(refresh())
        times.append(1000 * (time.perf_counter() - started))
    return {"median_ms": statistics.median(times), "max_ms": max(times), "first_ms": times[0], "calls": calls}


def pages(settings: Settings, calls: int) -> dict[str, dict[str, float]]:
    pool = ConnectionPool(settings.reader_database_url.get_secret_value(), min_size=1, max_size=2, open=True)
    registry = RegistryView(settings)
    registry.refresh_versions()  # what the dashboard's start-up warm() does before the first page
    try:
        return {
            "live": time_page(lambda: live_outputs(pool), calls),
            "drift": time_page(lambda: drift_outputs(pool, 0.5), calls),
            "models": time_page(lambda: models_outputs(pool, registry), calls),
            "dead_letters": time_page(lambda: dead_letters_outputs(pool), calls),
        }
    finally:
        pool.close()


def bench_dashboard(base: Settings, folder: Path, stamp: str, rows: int, repeats: int) -> dict[str, Any]:
    calls = 5 * repeats
    results: dict[str, Any] = {"rows": rows, "baseline_rows": 10_000, "spread_hours": SPREAD_S / 3600}
    results["baseline"] = pages(seed_world(base, f"bench-{stamp}-dash-small", folder, 10_000), calls)
    results["large"] = pages(seed_world(base, f"bench-{stamp}-dash-large", folder, rows), calls)
    results["ratio"] = {
        page: results["large"][page]["median_ms"] / results["baseline"][page]["median_ms"] for page in results["large"]
    }
    results["slowest_page_median_ms"] = max(p["median_ms"] for p in results["large"].values())
    return results


def markdown(d: dict[str, Any]) -> list[str]:
    lines = [
        f"## Dashboard pages ({d['rows']:,} prediction rows over {d['spread_hours']:.0f} h; baseline "
        f"{d['baseline_rows']:,} rows, same run)", "",
        "Server side of one refresh: the page's queries (read-only role), figures and JSON encoding.", "",
        "| page | median ms | max ms | first call ms | baseline median ms | ratio |", "|---|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for page, r in d["large"].items():
        lines.append(f"| {page} | {r['median_ms']:.0f} | {r['max_ms']:.0f} | {r['first_ms']:.0f} "
                     f"| {d['baseline'][page]['median_ms']:.0f} | {d['ratio'][page]:.1f}× |")  # fmt: skip
    return [*lines, ""]

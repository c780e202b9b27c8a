"""The valuation API under load: the served API (``pricemyride api``, Uvicorn) with its real database, driven
over HTTP by ``benchmarks.load`` at fixed offered rates.

- comparables: the query alone (``api.comparables``) at 10,000, 100,000 and 1,000,000 stored predictions,
  each a realistic market (generated listings, so makes and model families are spread as in the data);
- single valuations with comparables at 50, 200 and 500 requests/s over 1,000,000 stored predictions, and
  at 200/s over 10,000 (the baseline of the same run): p50 and p99 from the moment each request was due;
- batches of 100 listings, two callers back to back: listings/s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg
from pydantic import ValidationError

from api.comparables import query
from api.keys import create_key
from benchmarks.load import closed_loop, offered_load
from benchmarks.stream import Bench
from infra.harness import ROOT, free_port
from infra.services import http_answers, wait_until
from pricemyride.generator import generate_listings
from pricemyride.listing import Listing
from pricemyride.progress import progress
from pricemyride.settings import Settings
from pricing.path import listing_json
from producers.replay import row_event

log = logging.getLogger("bench.api")
SITE = "bench"
SAMPLE = 20_000
RATES = (50, 200, 500)
SEED = """
INSERT INTO predictions (source, listing_id, model_version, event_id, predicted_price, price_low, price_high,
                         deal_rating, asking_price, event_time, scored_at, listing)
SELECT %(site)s, 'b-' || g, 1, gen_random_uuid(), s.fair, s.fair * 0.75, s.fair * 1.3,
       (ARRAY['great', 'good', 'fair', 'high', 'overpriced'])[1 + g %% 5], s.asking, t, t,
       s.listing || jsonb_build_object('id', 'b-' || g)
FROM generate_series(1, %(rows)s) AS g
JOIN bench_sample AS s ON s.n = g %% %(sample)s
CROSS JOIN LATERAL (SELECT now() - g * interval '2 seconds' AS t) AS at
"""


def sample_listings(count: int, seed: int) -> list[Listing]:
    """Generated listings that keep the contract, as a site would send them."""
    now = datetime.now(UTC)
    out = []
    records: list[dict[str, Any]] = generate_listings(count, seed=seed).to_dict("records")  # type: ignore[assignment]
    for i, row in enumerate(records):
        try:
            out.append(Listing.model_validate(row_event(row, SITE, f"s-{i}", now) | {"source": SITE}))
        except ValidationError:
            continue
    return out


def seed(settings: Settings, listings: list[Listing], rows: int) -> float:
    """``rows`` stored predictions drawn from ``listings``; seconds taken."""
    started = time.perf_counter()
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE bench_sample (n int, listing jsonb, asking float8, fair float8)")
        with conn.cursor().copy("COPY bench_sample FROM STDIN") as copy:
            for n, listing in enumerate(listings):
                asking = listing.price or 10_000.0
                copy.write_row((n, listing_json(listing), asking, asking * 0.97))
        conn.execute(SEED, {"site": SITE, "rows": rows, "sample": len(listings)})
        conn.execute("VACUUM ANALYZE predictions")
    return time.perf_counter() - started


def time_comparables(settings: Settings, listings: list[Listing], calls: int) -> dict[str, float]:
    """The comparables query alone, through the reader's connection: median and p99 ms."""
    times = []
    with psycopg.connect(settings.reader_database_url.get_secret_value(), autocommit=True) as conn:
        for listing in listings[:calls]:
            built = query(listing, 10)
            if built is None:
                continue
            started = time.perf_counter()
            conn.execute(built[0], built[1]).fetchall()
            times.append(1000 * (time.perf_counter() - started))
    return {"median_ms": statistics.median(times), "p99_ms": float(np.percentile(times, 99)), "calls": len(times)}


class ServedApi:
    """``pricemyride api`` for one world, on a free port, with a key of its own."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.port = free_port()
        with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
            self.key = create_key(conn, SITE)
        env = os.environ | {"PRICEMYRIDE_API_PORT": str(self.port), "PRICEMYRIDE_API_RATE_PER_MINUTE": "100000000",
                            "PRICEMYRIDE_METRICS_PORT": "0"}  # fmt: skip
        self.log_file = folder / f"api-{self.port}.log"
        with self.log_file.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "pricemyride_cli", "api"], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 120) -> None:
        wait_until(lambda: http_answers(f"{self.url}/readyz") or self.proc.poll() is not None, "the API", timeout_s)
        if self.proc.poll() is not None:
            raise RuntimeError(f"the API exited: {self.log_file.read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bodies(listings: list[Listing]) -> list[bytes]:
    """Request bodies: the listings as a seller form would send them (no id, the key names the site)."""
    return [orjson.dumps({k: v for k, v in orjson.loads(listing_json(x)).items() if k not in ("id", "source")})
            for x in listings]  # fmt: skip


def load_runs(api: ServedApi, singles: list[bytes], rates: tuple[int, ...], seconds: float, repeats: int
              ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per rate, ``repeats`` open-loop runs of single valuations: medians (and spread) of p50, p99, lag."""
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
    out: dict[str, dict[str, Any]] = {}
    for rate in rates:
        runs = [asyncio.run(offered_load(api.url, headers, lambda i: ("/v1/valuations", singles[i % len(singles)]),
                                         rate, seconds)).summary()
                for _ in progress(range(repeats), f"{rate} valuations/s", total=repeats)]  # fmt: skip
        out[f"{rate}_per_s"] = summarised(runs)
    return out


def summarised(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("answered_per_s", "p50_ms", "p99_ms", "max_ms", "generator_lag_p99_ms")
    summary: dict[str, Any] = {k: {"median": statistics.median(r[k] for r in runs), "min": min(r[k] for r in runs),
                                   "max": max(r[k] for r in runs)} for k in keys}  # fmt: skip
    summary["offered_per_s"] = runs[0]["offered_per_s"]
    summary["not_200"] = sum(n for r in runs for status, n in r["statuses"].items() if status != "200")
    return summary


def batch_runs(api: ServedApi, singles: list[bytes], size: int, calls: int, repeats: int) -> dict[str, Any]:
    """Batches of ``size`` listings from two callers: listings/s per run, median of ``repeats``."""
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
    batches = [b"[" + b",".join(singles[i * size : (i + 1) * size]) + b"]" for i in range(len(singles) // size)]
    rates, failed = [], 0
    for _ in progress(range(repeats), f"batches of {size}", total=repeats):
        seconds, statuses = asyncio.run(closed_loop(api.url, headers, lambda i: ("/v1/valuations/batch",
                                                                                  batches[i % len(batches)]),
                                                    calls, concurrency=2))  # fmt: skip
        rates.append(calls * size / seconds)
        failed += sum(n for status, n in statuses.items() if status != 200)
    return {"size": size, "calls": calls, "listings_per_s": {"median": statistics.median(rates), "min": min(rates),
            "max": max(rates)}, "not_200": failed}  # fmt: skip


def served(settings: Settings, folder: Path) -> ServedApi:
    api = ServedApi(settings, folder)
    api.wait_ready()
    return api


def bench_api(bench: Bench, sizes: tuple[int, ...], seconds: float, repeats: int) -> dict[str, Any]:
    """Comparables growth over ``sizes`` stored rows; the API under load on the largest and the smallest."""
    listings = sample_listings(SAMPLE, seed=21)
    singles = bodies(listings[:5_000])
    report: dict[str, Any] = {"sizes": list(sizes), "seconds": seconds, "repeats": repeats, "comparables": {}}
    for rows in sizes:
        settings = bench.world(f"api-{rows}")
        report.setdefault("seed_s", {})[str(rows)] = seed(settings, listings, rows)
        report["comparables"][str(rows)] = time_comparables(settings, listings[5_000:], 500)
        if rows in (min(sizes), max(sizes)):
            api = served(settings, bench.folder)
            try:
                label = "large" if rows == max(sizes) else "baseline"
                report[label] = load_runs(api, singles, RATES if label == "large" else (200,), seconds, repeats)
                if label == "large":
                    report["batch"] = batch_runs(api, singles, 100, 100, repeats)
            finally:
                api.stop()
    return report


def markdown(d: dict[str, Any]) -> list[str]:
    largest, smallest = str(max(d["sizes"])), str(min(d["sizes"]))
    lines = [f"## Valuation API ({int(largest):,} stored predictions; open-loop load {d['seconds']:.0f} s a run, "
             f"medians of {d['repeats']})", "",
             "| offered / s | answered / s | p50 ms | p99 ms (median, min–max) | generator lag p99 ms | not 200 |",
             "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    rows = [(f"{r['offered_per_s']:,.0f}", r) for r in d["large"].values()]
    rows.append((f"{d['baseline']['200_per_s']['offered_per_s']:,.0f} (baseline: {int(smallest):,} rows)",
                 d["baseline"]["200_per_s"]))  # fmt: skip
    for label, r in rows:
        lines.append(f"| {label} | {r['answered_per_s']['median']:,.0f} | {r['p50_ms']['median']:.1f} | "
                     f"{r['p99_ms']['median']:.1f} ({r['p99_ms']['min']:.1f}–{r['p99_ms']['max']:.1f}) | "
                     f"{r['generator_lag_p99_ms']['median']:.1f} | {r['not_200']} |")  # fmt: skip
    b = d["batch"]
    lines += ["", f"Batch of {b['size']}: **{b['listings_per_s']['median']:,.0f} listings/s** "
              f"({b['listings_per_s']['min']:,.0f}–{b['listings_per_s']['max']:,.0f}; two callers, {b['calls']} "
              f"batches a run; not 200: {b['not_200']}).", "",
              "Comparables query alone (reader role, 500 listings):", "",
              "| stored predictions | median ms | p99 ms | ratio to the smallest |",
              "|---:|---:|---:|---:|"]  # fmt: skip
    base = d["comparables"][smallest]["median_ms"]
    for rows_, c in d["comparables"].items():
        lines.append(f"| {int(rows_):,} | {c['median_ms']:.2f} | {c['p99_ms']:.2f} | {c['median_ms'] / base:.2f}× |")
    return [*lines, ""]

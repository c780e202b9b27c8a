"""The pricing path's cost per listing, in-process: the champion's fair price, 80% range and deal rating
for validated listings (``pricing.path.price_listings``, what a stream worker runs per batch).

Baseline in the same run: the same model's fair price with a fixed-ratio range — the cost of the path
before the range needed its own difficulty model and information class (the band lookup it had cost
nothing measurable). The ratio is the range's price on the stream.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from benchmarks.stream import summary_of
from pricemyride.errors import InvalidListing
from pricemyride.generator import generate_listings
from pricemyride.listing import Listing
from pricemyride.parsing import parse_listing
from pricing.path import price_listings
from producers.replay import row_event

log = logging.getLogger("bench")
BATCHES: Final = (12, 2_000)  # a listing at a time under light load, a full fetch under a backlog
LISTINGS: Final = 20_000


class PointPriceOnly:
    """The baseline: the model's fair price and a fixed-ratio range (no difficulty model, no class lookup)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def price_ranges(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        fair = self.model._fair(records)
        return np.column_stack([fair, fair * 0.8, fair * 1.25])


def stream_listings(count: int) -> list[Listing]:
    """Generated listings (dirt included) as a worker receives them: through the event contract."""
    now = datetime.now(UTC)
    out = []
    for i, row in enumerate(generate_listings(count, seed=13).to_dict("records")):
        with contextlib.suppress(InvalidListing):
            out.append(parse_listing(json.dumps(row_event({str(k): v for k, v in row.items()}, "bench", str(i), now),
                                                default=str)))  # fmt: skip
    return out


def microseconds_per_listing(model: Any, listings: list[Listing], batch: int) -> float:
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, len(listings), batch):
        price_listings(model, 1, listings[start : start + batch], now)
    return (time.perf_counter() - started) / len(listings) * 1e6


def bench_pricing(champion: Any, repeats: int) -> dict[str, Any]:
    """µs per listing of the pricing path, the champion against the point-price baseline, per batch size."""
    listings = stream_listings(LISTINGS)
    champion.use_threads(1)  # as the stream workers run it
    results: dict[str, Any] = {"listings": len(listings)}
    for batch in BATCHES:
        for name, model in (("champion", champion), ("point_price_baseline", PointPriceOnly(champion))):
            microseconds_per_listing(model, listings[:2_000], batch)  # warm-up: category codes remembered
            runs = [microseconds_per_listing(model, listings, batch) for _ in range(repeats)]
            results[f"{name}_batch_{batch}_us"] = summary_of(runs)
        ratio = (
            results[f"champion_batch_{batch}_us"]["median"]
            / results[f"point_price_baseline_batch_{batch}_us"]["median"]
        )
        results[f"ratio_batch_{batch}"] = ratio
        log.info("pricing, batches of %d: %.1f µs/listing (%.2f× the point price)", batch,
                 results[f"champion_batch_{batch}_us"]["median"], ratio)  # fmt: skip
    return results


def pricing_markdown(p: dict[str, Any]) -> list[str]:
    lines = ["## Pricing path cost (in-process, one thread, as a worker runs it)", "",
             f"{p['listings']:,} generated listings through `pricing.path.price_listings`; medians of the runs.", "",
             "| batch | champion µs/listing | point-price baseline µs/listing | ratio |",
             "|---:|---:|---:|---:|"]  # fmt: skip
    for batch in BATCHES:
        ours, base = p[f"champion_batch_{batch}_us"], p[f"point_price_baseline_batch_{batch}_us"]
        lines.append(f"| {batch:,} | {ours['median']:.1f} ({ours['min']:.1f}–{ours['max']:.1f}) "
                     f"| {base['median']:.1f} | {p[f'ratio_batch_{batch}']:.2f}× |")  # fmt: skip
    return [*lines, ""]

"""What shadow scoring costs a worker (issue 27): one worker draining the same backlog, and the produced → stored
p99 at 1,000 listings/s, with a second version scoring in shadow beside the champion and without; the two arms
interleaved in each repeat, medians of 3. Goal: with a shadow, steady drain ≥ 0.75× and p99 ≤ 1.3× of without.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from benchmarks.stream import Bench, drain_once, latency_once, summarise
from infra.harness import rows
from pricemyride.progress import progress
from pricemyride.settings import Settings
from training.model import TrainParams
from training.train import train

RATE = 1_000


def shadow_model() -> int:
    """A second version in the bench's registry, trained as the champion was (not promoted): the shadow."""
    return train(Settings(), None, params=TrainParams(max_rounds=300, seed=7), promote=False).version


def with_shadow(bench: Bench, version: int) -> Bench:
    return dataclasses.replace(bench, shadow=version)


def shadow_rows() -> int:
    """Shadow prices stored in the world the environment points at (the last one made)."""
    return int(rows(Settings(), "SELECT count(*) FROM shadow_predictions")[0][0])


def bench_shadow(bench: Bench, listings: Path, latency_listings: Path, repeats: int, seconds: int) -> dict[str, Any]:
    shadowed = with_shadow(bench, shadow_model())
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in ("drain", "drain_shadow", "latency", "latency_shadow")}
    for i in progress(range(repeats), "shadow A/B: drain and p99 at 1,000/s, without / with a shadow"):
        runs["drain"].append(drain_once(bench, f"sd{i}", listings, 1))
        runs["drain_shadow"].append(drain_once(shadowed, f"sds{i}", listings, 1) | {"shadow_rows": shadow_rows()})
        runs["latency"].append(latency_once(bench, f"sl{i}", latency_listings, RATE, seconds, 1))
        runs["latency_shadow"].append(latency_once(shadowed, f"sls{i}", latency_listings, RATE, seconds, 1)
                                      | {"shadow_rows": shadow_rows()})  # fmt: skip
    out = {k: summarise(v) for k, v in runs.items()}
    steady = [out[k]["steady_listings_per_s"]["median"] for k in ("drain", "drain_shadow")]
    p99 = [out[k]["p99_ms"]["median"] for k in ("latency", "latency_shadow")]
    out["ratios"] = {"steady_drain": steady[1] / steady[0], "p99_at_1000": p99[1] / p99[0],
                     "peak_rss_mb": [out[k]["peak_rss_mb"]["median"] for k in ("drain", "drain_shadow")]}  # fmt: skip
    return out


def markdown(s: dict[str, Any]) -> list[str]:
    d, ds, la, ls = (s[k] for k in ("drain", "drain_shadow", "latency", "latency_shadow"))
    r = s["ratios"]
    return [
        "## Shadow scoring (one worker, medians of 3, arms interleaved)", "",
        "| | without a shadow | with a shadow | ratio |", "|---|---:|---:|---:|",
        f"| steady drain, listings/s | {d['steady_listings_per_s']['median']:,.0f} | "
        f"{ds['steady_listings_per_s']['median']:,.0f} | {r['steady_drain']:.2f}× |",
        f"| p99 produced → stored at {RATE:,}/s, ms | {la['p99_ms']['median']:.0f} | {ls['p99_ms']['median']:.0f} | "
        f"{r['p99_at_1000']:.2f}× |",
        f"| worker peak RSS, MB | {r['peak_rss_mb'][0]:.0f} | {r['peak_rss_mb'][1]:.0f} | "
        f"{r['peak_rss_mb'][1] / r['peak_rss_mb'][0]:.2f}× |",
        f"| shadow prices stored per drain | — | {ds['shadow_rows']['median']:,.0f} | |",
        f"| lost / duplicated | {d['lost']['max']:.0f} / {d['duplicated']['max']:.0f} | "
        f"{ds['lost']['max']:.0f} / {ds['duplicated']['max']:.0f} | |", "",
    ]  # fmt: skip

"""The scoring worker's Prometheus metrics (served by ``pricemyride.ops``; names in OPERATIONS.md).

Counting is per batch, never per listing, so the hot path pays a few calls per 2,000 listings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from aiokafka import TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from pricemyride.ops import PREFIX, SECONDS_BUCKETS, BatchHistogram, registered
from pricemyride.storage import DeadLetterRow

CONSUMED = Counter(f"{PREFIX}listings_consumed_total", "Listings fetched from Kafka by this worker.")
SCORED = Counter(f"{PREFIX}listings_scored_total", "Listings priced, stored and published.")
DEAD_LETTERED = Counter(
    f"{PREFIX}listings_dead_lettered_total",
    "Listings sent to the dead-letter topic, by reason class (malformed, invalid_field, unpriceable, internal).",
    ["reason_class"],
)
BATCHES = Counter(f"{PREFIX}batches_total", "Batches stored, published and committed.")
STEP_SECONDS = Histogram(
    f"{PREFIX}batch_step_seconds", "Seconds per batch in each step (fetch, score, shadow, store, publish, commit).",
    ["step"], buckets=SECONDS_BUCKETS,
)  # fmt: skip
STORED_LATENCY = registered(
    BatchHistogram(f"{PREFIX}produced_to_stored_seconds",
                   "Seconds from a listing's Kafka timestamp (when it was produced) to its row being stored.")
)  # fmt: skip
LAG = Gauge(
    f"{PREFIX}consumer_lag_messages", "Listings on a partition not yet fetched: high watermark minus position.",
    ["topic", "partition"],
)  # fmt: skip
PARTITIONS = Gauge(f"{PREFIX}partitions_assigned", "Partitions of the listings topic this worker holds.")
MODEL_VERSION = Gauge(f"{PREFIX}model_version", "The registered model version scoring now (0: none loaded).")
MODEL_LOADED = Gauge(f"{PREFIX}model_loaded", "1 when a champion is loaded and scoring, else 0.")
SWAPS = Counter(f"{PREFIX}model_swaps_total", "Hot swaps to a newly promoted version.")
LOAD_FAILURES = Counter(f"{PREFIX}model_load_failures_total", "Versions that could not be loaded (kept the old one).")
UNCROWNED = Counter(
    f"{PREFIX}model_uncrowned_total",
    "Versions refused because the gate recorded no promotion of them (alias moved by hand, forged event).",
)
SHADOW_VERSION = Gauge(f"{PREFIX}shadow_version", "The version scoring in shadow in this worker (0: none).")
SHADOW_ROWS = Counter(f"{PREFIX}shadow_rows_total", "Listings a shadow priced beside the champion (stored only).")
SHADOW_DROPS = Counter(f"{PREFIX}shadow_drops_total", "Shadow versions this worker dropped: could not load, or raised.")

REASON_CLASSES = ("malformed", "invalid_field", "unpriceable", "internal")
for each_class in REASON_CLASSES:  # every class and step is exported from the start, at 0
    DEAD_LETTERED.labels(each_class)
for each_step in ("fetch", "score", "shadow", "store", "publish", "commit"):
    STEP_SECONDS.labels(each_step)


def reason_class(reason: str) -> str:
    """The class of a dead-letter reason: the envelope ('listing: …'), a field, the model ('model: …'), or a
    failure nothing more specific names ('internal error: …', a bug: the worker logged its traceback)."""
    if reason.startswith("internal error:"):
        return "internal"
    if reason.startswith("listing:"):
        return "malformed"
    if reason.startswith("model:"):
        return "unpriceable"
    return "invalid_field"


class WorkerMetrics:
    """The worker's calls into the metrics; ``enabled=False`` makes each a no-op (the bench's baseline)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        MODEL_LOADED.set(0)
        MODEL_VERSION.set(0)

    def step(self, name: str, seconds: float) -> None:
        if self.enabled:
            STEP_SECONDS.labels(name).observe(seconds)

    def batch(self, consumed: int, scored: int, dead: Sequence[DeadLetterRow], produced_ms: np.ndarray,
              stored_at: float) -> None:  # fmt: skip
        """One stored and published batch: counts, dead letters by class, produced → stored latency."""
        if not self.enabled:
            return
        CONSUMED.inc(consumed)
        SCORED.inc(scored)
        BATCHES.inc()
        for row in dead:
            DEAD_LETTERED.labels(reason_class(row.reason)).inc()
        STORED_LATENCY.observe_many(stored_at - produced_ms / 1000.0)

    def lag(self, positions: Mapping[TopicPartition, int], highwaters: Mapping[TopicPartition, int | None]) -> None:
        if not self.enabled:
            return
        for tp, position in positions.items():
            high = highwaters.get(tp)
            if high is not None:
                LAG.labels(tp.topic, str(tp.partition)).set(max(high - position, 0))

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        LAG.clear()  # partitions given up are no longer this worker's lag
        PARTITIONS.set(len(partitions))

    def model(self, version: int, swapped: bool = False) -> None:
        MODEL_VERSION.set(version)
        MODEL_LOADED.set(1)
        if swapped:
            SWAPS.inc()

    def load_failed(self, uncrowned: bool = False) -> None:
        LOAD_FAILURES.inc()
        if uncrowned:
            UNCROWNED.inc()

    def shadow(self, version: int | None, rows: int = 0, dropped: bool = False) -> None:
        """The shadow in use (None: none), listings it priced in a batch, or one dropped."""
        SHADOW_VERSION.set(version or 0)
        if dropped:
            SHADOW_DROPS.inc()
        if rows and self.enabled:
            SHADOW_ROWS.inc(rows)

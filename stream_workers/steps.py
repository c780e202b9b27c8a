"""Where a worker's time goes: seconds per step, logged every few seconds and observed by the metrics."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from stream_workers.metrics import WorkerMetrics

log = logging.getLogger(__name__)
STEPS = ("fetch", "score", "shadow", "store", "publish", "commit")  # shadow: waiting for a shadow model's prices
# (priced on its thread while the champion's rows are stored; within store; none without one); publish: the batch's
# outputs and offsets to Kafka (in the background); commit: waiting for the previous's


@dataclass
class StepTimes:
    """Where a worker's time goes, logged every ``every_s``: listings/s and ms per batch in each step."""

    metrics: WorkerMetrics = field(default_factory=lambda: WorkerMetrics(enabled=False))
    every_s: float = 10.0
    listings: int = 0
    batches: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))
    since: float = field(default_factory=time.monotonic)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        took = time.perf_counter() - started
        self.seconds[name] += took
        self.metrics.step(name, took)

    def batch_done(self, size: int) -> None:
        self.listings, self.batches = self.listings + size, self.batches + 1
        elapsed = time.monotonic() - self.since
        if elapsed >= self.every_s:
            per_batch = ", ".join(f"{k} {1000 * v / self.batches:.0f}" for k, v in self.seconds.items())
            log.info("%.0f listings/s in %d batches of %.0f; ms per batch: %s",
                     self.listings / elapsed, self.batches, self.listings / self.batches, per_batch)  # fmt: skip
            self.listings, self.batches, self.since = 0, 0, time.monotonic()
            self.seconds = dict.fromkeys(STEPS, 0.0)

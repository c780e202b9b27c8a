"""The retrain listener's Prometheus metrics: requests, flow runs by outcome, and how long a run takes."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from pricemyride.ops import PREFIX

RECEIVED = Counter(f"{PREFIX}retrain_requests_received_total", "Retrain requests read from Kafka.")
RUNS = Counter(
    f"{PREFIX}retrain_runs_total",
    "Retrain requests handled, by outcome: promoted, rejected (the gate kept the champion), failed (after "
    "retries), skipped (malformed, or about a champion that has since changed).",
    ["outcome"],
)
RUN_SECONDS = Histogram(
    f"{PREFIX}retrain_run_seconds", "Seconds per retrain flow run, retries included.",
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)  # fmt: skip
OUTCOMES = ("promoted", "rejected", "failed", "skipped")
for each in OUTCOMES:
    RUNS.labels(each)


def handled(outcome: str) -> None:
    RUNS.labels(outcome).inc()

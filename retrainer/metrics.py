"""The retrain listener's Prometheus metrics: requests, flow runs by outcome, and how long a run takes."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

from pricemyride.ops import PREFIX
from training.live_gate import LiveCheck

RECEIVED = Counter(f"{PREFIX}retrain_requests_received_total", "Retrain requests read from Kafka.")
RUNS = Counter(
    f"{PREFIX}retrain_runs_total",
    "Retrain requests handled, by outcome: promoted, shadowed (passed; the live gate decides), rejected (the gate "
    "kept the champion), failed (after retries), skipped (malformed, or about a champion that has since changed).",
    ["outcome"],
)
RUN_SECONDS = Histogram(
    f"{PREFIX}retrain_run_seconds", "Seconds per retrain flow run, retries included.",
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)  # fmt: skip
SHADOW_VERSION = Gauge(f"{PREFIX}live_gate_shadow_version", "The version in shadow the live gate watches (0: none).")
SHADOW_AGE = Gauge(f"{PREFIX}live_gate_shadow_age_seconds", "Seconds since the running shadow started (0: none).")
SHADOW_ROWS = Gauge(f"{PREFIX}live_gate_rows", "Labelled live listings both the shadow and the champion priced.")
SHADOW_MAE = Gauge(f"{PREFIX}live_gate_mae", "MAE on those listings, of the champion and of the shadow.", ["model"])
ALERT_AFTER = Gauge(f"{PREFIX}live_gate_alert_after_seconds", "PRICEMYRIDE_SHADOW_ALERT_S: a shadow older alerts.")
SHADOW_CI_HIGH = Gauge(f"{PREFIX}live_gate_ci_high", "Upper end of the interval of shadow MAE − champion MAE.")
DECISIONS = Counter(
    f"{PREFIX}live_gate_decisions_total", "Live gate decisions: promoted, rejected, kept, rolled_back.", ["outcome"]
)
OUTCOMES = ("promoted", "shadowed", "rejected", "failed", "skipped")
for each in OUTCOMES:
    RUNS.labels(each)
for each in ("promoted", "rejected", "kept", "rolled_back"):
    DECISIONS.labels(each)


def handled(outcome: str) -> None:
    RUNS.labels(outcome).inc()


def shadow_seen(looked: LiveCheck | None) -> None:
    """The running shadow's figures (all 0 without one, or once decided), and the decision when one was made."""
    running = looked if looked is not None and looked.outcome is None else None
    comparison = running.comparison if running is not None else None
    SHADOW_VERSION.set(running.shadow.version if running is not None else 0)
    SHADOW_AGE.set(max(time.time() - running.shadow.since.timestamp(), 0.0) if running is not None else 0.0)
    SHADOW_ROWS.set(comparison.rows if comparison else 0)
    SHADOW_MAE.labels("champion").set(comparison.champion_mae if comparison else 0)
    SHADOW_MAE.labels("shadow").set(comparison.shadow_mae if comparison else 0)
    SHADOW_CI_HIGH.set(comparison.ci_high if comparison else 0)
    if looked is not None and looked.outcome is not None:
        DECISIONS.labels(looked.outcome).inc()

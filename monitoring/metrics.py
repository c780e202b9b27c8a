"""The drift worker's Prometheus metrics: each window's drift and realized error, and retrain requests."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from monitoring.drift import WindowResult
from pricemyride.ops import PREFIX

WINDOWS = Counter(
    f"{PREFIX}drift_windows_total", "Drift windows recorded, by whether a policy signal fired.", ["fired"]
)
ROWS = Gauge(f"{PREFIX}drift_window_rows", "Predictions in the last window.")
SHARE = Gauge(f"{PREFIX}drift_share_ratio", "Share of the listing features that drifted in the last window (0-1).")
MAE = Gauge(f"{PREFIX}window_mae_dollars", "Realized mean absolute error of the last window's labelled listings.")
COVERAGE = Gauge(f"{PREFIX}window_range_coverage_ratio", "Share of the last window's asking prices inside the range.")
EPISODE = Gauge(f"{PREFIX}drift_episode_active", "1 while windows keep drifting (a drift episode is open), else 0.")
REQUESTS = Counter(f"{PREFIX}retrain_requests_published_total", "Retrain requests the drift worker published.")
SKIPPED = Counter(
    f"{PREFIX}drift_skipped_predictions_total",
    "Records on the predictions topic the monitor skipped: not a Prediction, or in a window it could not compute.",
)
MARKET_REFRESHED = Gauge(f"{PREFIX}market_refreshed_timestamp_seconds", "When the market rollups were last refreshed.")
MARKET_SECONDS = Gauge(f"{PREFIX}market_refresh_seconds", "How long the last market rollup refresh took.")
MARKET_FAILURES = Counter(f"{PREFIX}market_refresh_failures_total", "Market rollup refreshes that failed (logged).")
REFERENCE = Gauge(f"{PREFIX}drift_reference_version", "The champion version windows are compared against (0: none).")

for each in ("true", "false"):
    WINDOWS.labels(each)


def window(result: WindowResult, version: int, requested: bool) -> None:
    """Record one window: figures that were not computed (no labelled rows) keep their last value."""
    WINDOWS.labels("true" if result.fired else "false").inc()
    ROWS.set(result.rows)
    SHARE.set(result.drift_share)
    EPISODE.set(1 if result.fired else 0)
    REFERENCE.set(version)
    if result.mae is not None:
        MAE.set(result.mae)
    if result.coverage is not None:
        COVERAGE.set(result.coverage)
    if requested:
        REQUESTS.inc()


def skipped(count: int = 1) -> None:
    SKIPPED.inc(count)


def market(seconds: float) -> None:
    MARKET_SECONDS.set(seconds)
    MARKET_REFRESHED.set_to_current_time()


def market_failed() -> None:
    MARKET_FAILURES.inc()

"""What drift monitoring checks, kept apart from the code that computes it.

A ``DriftPolicy`` says which columns are compared with the champion's reference sample, with which
Evidently tests and thresholds, how windows are cut, and when a retrain is requested. It is a plain
typed object: ``monitoring.drift`` computes a window, ``WindowVerdict`` applies the policy to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from pricemyride.settings import Settings

NUMERIC: Final = ("year", "odometer", "lat", "long")
CATEGORICAL: Final = ("manufacturer", "condition", "cylinders", "fuel", "title_status", "transmission",
                      "drive", "type", "paint_color", "state")  # fmt: skip


@dataclass(frozen=True)
class DriftPolicy:
    """When the live stream has moved away from what the champion was trained on."""

    numeric_columns: tuple[str, ...] = NUMERIC
    """Numeric listing fields compared with the reference sample."""
    categorical_columns: tuple[str, ...] = CATEGORICAL
    """Categorical listing fields compared with the reference sample."""
    numeric_method: str = "wasserstein"
    """Evidently test for numeric columns: normed Wasserstein distance (robust at large windows)."""
    categorical_method: str = "jensenshannon"
    """Evidently test for categorical columns: Jensen-Shannon distance."""
    column_threshold: float = 0.1
    """A column drifted when its distance exceeds this."""
    drift_share: float = 0.5
    """The feature set drifted when at least this share of columns drifted."""
    prediction_threshold: float = 0.1
    """Prediction (and asking-price) drift: distance of the window's distribution from the reference."""
    mae_ratio: float = 1.3
    """Realized MAE on labelled listings above this multiple of the champion's test MAE is drift."""
    window_events: int = 2_000
    """A tumbling window closes after this many predictions…"""
    window_seconds: float = 300.0
    """…or this many seconds, whichever comes first."""
    min_rows: int = 300
    """Windows with fewer predictions are recorded but never fire."""
    min_labelled_rows: int = 100
    """Realized error needs at least this many listings with a usable asking price."""
    consecutive_windows: int = 2
    """A retrain is requested only after this many drifting windows in a row."""
    cooldown_seconds: float = 1_800.0
    """At most one retrain request per this many seconds, and one per drift episode."""
    reasons: tuple[str, ...] = field(default=("asking_price", "realized_error"))
    """Which signals may request a retrain (of features, prediction, asking_price, realized_error).

    Here the label arrives with the event, so the default trusts the label-based signals: realized error
    and asking-price drift. Feature and prediction drift are computed, stored and shown, but on these
    listings they mostly measure which listing sites are sending (source mix), not a market change."""


def policy_from_settings(settings: Settings) -> DriftPolicy:
    """The default policy with the window and cadence the deployment's settings ask for."""
    return DriftPolicy(
        window_events=settings.drift_window_events,
        window_seconds=settings.drift_window_seconds,
        consecutive_windows=settings.drift_consecutive_windows,
        cooldown_seconds=settings.drift_cooldown_s,
        min_rows=settings.drift_min_rows,
        min_labelled_rows=min(100, settings.drift_min_rows),
    )

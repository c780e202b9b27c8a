"""What drift monitoring checks, kept apart from the code that computes it.

A ``DriftPolicy`` says which columns are compared with the champion's reference sample, with which
Evidently tests and thresholds, how windows are cut, and when a retrain is requested. It is a typed,
frozen object nested in ``Settings`` as ``settings.drift`` — each field is read from
``PRICEMYRIDE_DRIFT_<FIELD>`` (e.g. ``PRICEMYRIDE_DRIFT_WINDOW_EVENTS``) and declared here only;
``monitoring.drift`` computes a window and applies the policy to it.
"""

from __future__ import annotations

from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

NUMERIC: Final = ("year", "odometer", "lat", "long")
CATEGORICAL: Final = ("manufacturer", "condition", "cylinders", "fuel", "title_status", "transmission",
                      "drive", "type", "paint_color", "state")  # fmt: skip


class DriftPolicy(BaseModel):
    """When the live stream has moved away from what the champion was trained on."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True, extra="forbid")

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
    window_events: int = Field(2_000, ge=1)
    """A tumbling window closes after this many predictions…"""
    window_seconds: float = Field(300.0, gt=0)
    """…or this many seconds, whichever comes first."""
    min_rows: int = Field(300, ge=1)
    """Windows with fewer predictions are recorded but never fire."""
    min_labelled_rows: int = Field(100, ge=1)
    """Realized error needs at least this many listings with a usable asking price."""
    consecutive_windows: int = Field(2, ge=1)
    """A retrain is requested only after this many drifting windows in a row."""
    cooldown_s: float = Field(1_800.0, ge=0)
    """At most one retrain request per this many seconds, and one per drift episode."""
    reasons: tuple[str, ...] = ("asking_price", "realized_error")
    """Which signals may request a retrain (of features, prediction, asking_price, realized_error).

    Here the label arrives with the event, so the default trusts the label-based signals: realized error
    and asking-price drift. Feature and prediction drift are computed, stored and shown, but on these
    listings they mostly measure which listing sites are sending (source mix), not a market change."""

    @model_validator(mode="after")
    def _labelled_rows_fit_a_window(self) -> Self:
        if self.min_labelled_rows > self.min_rows:
            raise ValueError(
                f"expected min_labelled_rows ≤ min_rows, got {self.min_labelled_rows} > {self.min_rows}: "
                "set PRICEMYRIDE_DRIFT_MIN_LABELLED_ROWS too"
            )
        return self


class SourcePolicy(BaseModel):
    """What one listing site may contribute to retraining, and how the gate judges a challenger per site
    (``settings.sources``, read from ``PRICEMYRIDE_SOURCES_<FIELD>``; applied by ``training.sources`` and
    ``training.gate``)."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True, extra="forbid")

    max_share: float = Field(0.3, gt=0, le=1)
    """No source keeps more than this share of the stored training rows (a larger one is sampled down); chosen
    on validation (``make share-choice``: 0.3 of 0.2–1.0, ``reports/source_share.json``)."""
    max_shift: float = Field(1.5, gt=1)
    """A source whose median asking ÷ fair price lies beyond this factor of the sites' and champion's is set aside."""
    outlier_z: float = Field(4.0, gt=0)
    """Listings more than this many robust z-scores from their source's median asking ÷ fair are dropped."""
    min_rows: int = Field(30, ge=1)
    """A source's median is judged from this many listings on."""
    gate_min_rows: int = Field(50, ge=1)
    """The gate judges a source from this many held-out listings on."""
    gate_margin: float = Field(0.10, ge=0, lt=1)
    """The challenger is refused if its MAE on any judged source is worse than the champion's by more than this."""


class ShadowPolicy(BaseModel):
    """How a challenger earns promotion on live listings, and how a promotion is watched (``settings.shadow``,
    read from ``PRICEMYRIDE_SHADOW_<FIELD>``; applied by ``training.live_gate``). The MAE margin is
    ``promotion_margin``, the coverage band and the per-source rule the offline gate's."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True, extra="forbid")

    enabled: bool = True
    """A challenger that passes the offline gate is shadowed on live listings first; false promotes it at once."""
    min_rows: int = Field(1_000, ge=50)
    """The live gate decides once the shadow has priced this many listings with a usable asking price…"""
    min_s: float = Field(0.0, ge=0)
    """…and has been running at least this many seconds."""
    watch_rows: int = Field(1_000, ge=50)
    """After a live promotion the previous champion is shadowed for this many labelled listings: if the new
    champion is worse by the same test, it is rolled back."""
    alert_s: float = Field(21_600.0, gt=0)
    """A shadow running this long without a decision raises the PriceMyRideShadowUndecided alert."""
    confidence: float = Field(0.95, gt=0.5, lt=1)
    """Confidence level of the paired bootstrap interval for the MAE difference."""
    resamples: int = Field(2_000, ge=200)
    """Bootstrap resamples."""
    check_s: float = Field(10.0, gt=0)
    """The retrain listener checks a running shadow this often."""

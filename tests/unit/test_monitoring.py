"""Drift monitoring: the policy's signals, episodes and cooldown, and Evidently on real-shaped windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring.drift import Episode, WindowResult, compute_window, signals
from pricemyride.generator import generate_listings
from pricemyride.policy import DriftPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ALL_SIGNALS = ("features", "prediction", "asking_price", "realized_error")
POLICY = DriftPolicy(consecutive_windows=2, cooldown_s=600, min_rows=100, min_labelled_rows=50, reasons=ALL_SIGNALS)


def window(**changes: object) -> WindowResult:
    base = {"rows": 1000, "labelled_rows": 800, "feature_scores": {}, "drifted_features": [], "drift_share": 0.0,
            "prediction_drift": 0.01, "price_drift": 0.01, "mae": 3000.0, "mape": 0.2, "mae_ratio": 1.0,
            "coverage": 0.8}  # fmt: skip
    return WindowResult(**(base | changes))  # type: ignore[arg-type]


def test_quiet_window_fires_nothing() -> None:
    assert signals(POLICY, window()) == []


@pytest.mark.parametrize(
    ("changes", "fired"),
    [
        ({"drift_share": 0.6}, ["features"]),
        ({"prediction_drift": 0.2}, ["prediction"]),
        ({"price_drift": 0.2}, ["asking_price"]),
        ({"mae_ratio": 1.5}, ["realized_error"]),
        ({"mae_ratio": 1.5, "labelled_rows": 10}, []),  # too few labels to judge error
        ({"drift_share": 0.9, "rows": 50}, []),  # too small a window
    ],
)
def test_each_signal_fires_on_its_own(changes: dict[str, object], fired: list[str]) -> None:
    assert signals(POLICY, window(**changes)) == fired


def test_by_default_only_label_based_signals_request_a_retrain() -> None:
    loud = window(drift_share=0.9, prediction_drift=0.5, price_drift=0.5, mae_ratio=2.0)
    assert signals(DriftPolicy(), loud) == ["asking_price", "realized_error"]


def test_one_request_per_episode_after_consecutive_windows_and_cooldown() -> None:
    episode = Episode(POLICY)
    at = [T0 + timedelta(seconds=60 * i) for i in range(20)]
    assert episode.observe(["features"], at[0]) is False  # first drifting window
    assert episode.observe(["features"], at[1]) is True  # second in a row: request
    assert episode.observe(["features"], at[2]) is False  # same episode, cooling down
    assert episode.observe([], at[3]) is False  # episode over
    assert episode.observe(["prediction"], at[4]) is False
    assert episode.observe(["prediction"], at[5]) is False, "a new episode still respects the cooldown"
    assert episode.observe(["prediction"], at[12]) is True, "cooldown over (10 min after the last request)"


def frame_with_predictions(seed: int, price_factor: float = 1.0, years_older: int = 0) -> pd.DataFrame:
    frame = generate_listings(2_000, seed=seed, start=T0, dirty=False)
    frame["year"] = frame["year"] - years_older
    frame["price"] = frame["price"] * price_factor
    rng = np.random.default_rng(seed)
    frame["predicted_price"] = frame["price"] / price_factor * rng.normal(1, 0.15, len(frame))
    frame["price_low"], frame["price_high"] = 0.8 * frame["predicted_price"], 1.25 * frame["predicted_price"]
    return frame


def test_same_distribution_does_not_drift() -> None:
    result = compute_window(POLICY, frame_with_predictions(1), frame_with_predictions(2), champion_mae=None)
    assert result.drifted_features == []
    assert result.fired == []
    assert result.labelled_rows > 1_500


def test_price_surge_and_older_cars_drift() -> None:
    reference = frame_with_predictions(1)
    current = frame_with_predictions(2, price_factor=1.4, years_older=6)
    mae_reference = float(np.abs(reference["predicted_price"] - reference["price"]).mean())
    result = compute_window(POLICY, reference, current, champion_mae=mae_reference)
    assert "year" in result.drifted_features
    assert result.price_drift > POLICY.prediction_threshold
    assert result.mae_ratio is not None
    assert result.mae_ratio > POLICY.mae_ratio
    assert {"asking_price", "realized_error"} <= set(result.fired)

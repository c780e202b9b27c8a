"""Compute one drift window with Evidently 0.7 and apply the policy to it.

Per window: per-feature drift scores against the champion's reference sample, the share of drifted
features, prediction drift and asking-price drift, realized MAE/MAPE on listings with a usable asking
price (the label in this domain) against the champion's training-time MAE, and range coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd

from pricemyride.policy import DriftPolicy
from training.cleaning import is_usable_label


@dataclass(frozen=True)
class WindowResult:
    """The figures of one window."""

    rows: int
    labelled_rows: int
    feature_scores: dict[str, float]
    drifted_features: list[str]
    drift_share: float
    prediction_drift: float
    price_drift: float
    mae: float | None
    mape: float | None
    mae_ratio: float | None
    coverage: float | None
    fired: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


ALL_MISSING: Final = 1.0  # the score of a column the reference has and the window lacks entirely


def _given(columns: list[str], reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    return [c for c in columns if current[c].notna().any() and reference[c].notna().any()]


def _evidently_scores(
    policy: DriftPolicy, reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> dict[str, float]:
    """Evidently ValueDrift per column (distance: higher means more drift). Evidently refuses an empty column,
    so a column with no value in the window but values in the reference scores ``ALL_MISSING`` (every value
    gone is as far as a column can move: a window of sites that never send ``lat`` drifts on it, and is not
    a failed window), and one with no value in the reference is not judged."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    gone = {c: ALL_MISSING for c in [*numeric, *categorical] if reference[c].notna().any() and current[c].isna().all()}
    numeric, categorical = _given(numeric, reference, current), _given(categorical, reference, current)
    if not numeric and not categorical:
        return gone

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    metrics = [ValueDrift(column=c, method=policy.numeric_method) for c in numeric]
    metrics += [ValueDrift(column=c, method=policy.categorical_method) for c in categorical]
    columns = numeric + categorical
    snapshot = Report(metrics).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    scores: dict[str, float] = {}
    for item in snapshot.dict()["metrics"]:
        column = item["config"]["column"]
        value = item["value"]
        scores[column] = float(value) if value is not None and math.isfinite(float(value)) else 0.0
    return scores | gone


def _typed(frame: pd.DataFrame, policy: DriftPolicy) -> pd.DataFrame:
    out = frame.copy()
    for column in (*policy.numeric_columns, "predicted_price", "price"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    for column in policy.categorical_columns:
        out[column] = out[column].astype("string").str.lower().fillna("(missing)").astype(str)
    return out


def realized_error(current: pd.DataFrame) -> tuple[int, float | None, float | None, float | None]:
    """(labelled rows, MAE, MAPE, range coverage) on listings whose asking price is a usable label."""
    labelled = current[is_usable_label(current)]
    if labelled.empty:
        return 0, None, None, None
    price = labelled["price"].to_numpy(dtype="float64")
    error = np.abs(labelled["predicted_price"].to_numpy(dtype="float64") - price)
    inside = (price >= labelled["price_low"].to_numpy()) & (price <= labelled["price_high"].to_numpy())
    return len(labelled), float(error.mean()), float((error / price).mean()), float(inside.mean())


def compute_window(
    policy: DriftPolicy, reference: pd.DataFrame, current: pd.DataFrame, champion_mae: float | None
) -> WindowResult:
    """Every figure of one window, and which of the policy's signals fired."""
    reference, current = _typed(reference, policy), _typed(current, policy)
    numeric, categorical = [*policy.numeric_columns, "predicted_price"], list(policy.categorical_columns)
    scores = _evidently_scores(policy, reference, current, numeric, categorical)
    labelled_now, labelled_then = current[is_usable_label(current)], reference[is_usable_label(reference)]
    if len(labelled_now) >= 2 and len(labelled_then) >= 2:
        scores |= _evidently_scores(policy, labelled_then, labelled_now, ["price"], [])
    features = [*policy.numeric_columns, *policy.categorical_columns]
    drifted = [c for c in features if scores.get(c, 0.0) > policy.column_threshold]
    labelled, mae, mape, coverage = realized_error(current)
    ratio = mae / champion_mae if mae is not None and champion_mae else None
    result = WindowResult(
        rows=len(current), labelled_rows=labelled,
        feature_scores={c: round(scores.get(c, 0.0), 4) for c in features},
        drifted_features=drifted, drift_share=len(drifted) / len(features),
        prediction_drift=scores.get("predicted_price", 0.0), price_drift=scores.get("price", 0.0),
        mae=mae, mape=mape, mae_ratio=ratio, coverage=coverage,
    )  # fmt: skip
    return WindowResult(**(result.as_dict() | {"fired": signals(policy, result)}))


def signals(policy: DriftPolicy, window: WindowResult) -> list[str]:
    """The policy's signals that fired in this window (none below the minimum sizes)."""
    if window.rows < policy.min_rows:
        return []
    labelled = window.labelled_rows >= policy.min_labelled_rows
    fired = {
        "features": window.drift_share >= policy.drift_share,
        "prediction": window.prediction_drift > policy.prediction_threshold,
        "asking_price": labelled and window.price_drift > policy.prediction_threshold,
        "realized_error": labelled and window.mae_ratio is not None and window.mae_ratio > policy.mae_ratio,
    }
    return [name for name in policy.reasons if fired[name]]


@dataclass
class Episode:
    """Per-stream state: consecutive drifting windows, the open episode and the cooldown.

    A drift episode is a run of drifting windows. It gets one retrain request once it is
    ``consecutive_windows`` long; if it persists (say the challenger was rejected), it gets another only
    after the cooldown. A window that does not drift ends the episode.
    """

    policy: DriftPolicy
    consecutive: int = 0
    last_request: datetime | None = None

    def observe(self, fired: list[str], now: datetime) -> bool:
        """Feed one window's signals; True when a retrain request should be published now."""
        if not fired:
            self.consecutive = 0
            return False
        self.consecutive += 1
        cooling = self.last_request is not None and (now - self.last_request).total_seconds() < self.policy.cooldown_s
        if cooling or self.consecutive < self.policy.consecutive_windows:
            return False
        self.last_request = now
        return True

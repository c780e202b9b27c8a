"""The slices a model is judged on: all rows, asking-price bands, seller samples and information levels.

One definition for ``pricemyride evaluate`` (with both baselines and several seeds) and for every training
run, which logs its own per-slice figures with the model (``contracts.QUALITY_SLICES``) for the dashboard.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from training.data import model_input, prices
from training.levels import LEVELS, at_level
from training.metrics import PRICE_BANDS, band_name, point_metrics, range_metrics

Slice = tuple[str, str, pd.DataFrame]


class RangeModel(Protocol):
    def predict_range(self, frame: pd.DataFrame) -> pd.DataFrame: ...


def slices_of(test: pd.DataFrame) -> list[Slice]:
    """(group, name, rows): all rows, asking-price bands, seller samples and information levels (the same
    test rows with fields blanked)."""
    price = prices(test)
    out = [("all", "all rows", test), ("all", "rows with a year", test[test["year"].notna()])]
    out += [("price band", band_name(lo, hi), test[(price >= lo) & (price < hi)]) for lo, hi in PRICE_BANDS]
    if "source" in test:
        out += [("source", str(s), test[test["source"] == s]) for s in sorted(test["source"].dropna().unique())]
    out += [("information", level, at_level(test, level)) for level in LEVELS]
    return [(group, name, frame) for group, name, frame in out if len(frame)]


def model_figures(model: RangeModel, frame: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """Point and range figures of ``model`` on ``frame``, and its predictions."""
    price = prices(frame).to_numpy()
    ours = model.predict_range(model_input(frame))
    fair, low, high = (ours[c].to_numpy() for c in ("predicted_price", "price_low", "price_high"))
    return point_metrics(price, fair) | range_metrics(price, fair, low, high), ours


def slice_quality(model: RangeModel, test: pd.DataFrame) -> list[dict[str, Any]]:
    """The model's figures on every slice of ``test`` (no baselines): what a training run logs."""
    return [
        {"group": g, "slice": n, "rows": len(f), "model": model_figures(model, f)[0]} for g, n, f in slices_of(test)
    ]

"""Model quality figures, apart from training and evaluation: point errors, and the range's coverage and
width, overall and per asking-price band."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

PRICE_BANDS: Final = ((0, 5_000), (5_000, 15_000), (15_000, 30_000), (30_000, float("inf")))
MAPE_MIN_PRICE: Final = 1_000.0


def band_name(low: float, high: float) -> str:
    return f"${low / 1000:.0f}k+" if high == float("inf") else f"${low / 1000:.0f}k–{high / 1000:.0f}k"


def point_metrics(price: np.ndarray, fair: np.ndarray) -> dict[str, float]:
    error = fair - price
    big = price >= MAPE_MIN_PRICE
    total = float(((price - price.mean()) ** 2).sum())
    return {
        "rows": float(len(price)),
        "mae": float(np.abs(error).mean()),
        "median_ae": float(np.median(np.abs(error))),
        "rmse": float(np.sqrt((error**2).mean())),
        "mape": float((np.abs(error[big]) / price[big]).mean()) if big.any() else float("nan"),
        "r2": 1.0 - float((error**2).sum()) / total if total else float("nan"),
    }


def quality_metrics(price: np.ndarray, predicted: pd.DataFrame) -> dict[str, Any]:
    """Point metrics, and the range's coverage and mean width, overall and per asking-price band."""

    def one(mask: np.ndarray) -> dict[str, float]:
        fair, low, high = (predicted[c].to_numpy()[mask] for c in ("predicted_price", "price_low", "price_high"))
        inside = (price[mask] >= low) & (price[mask] <= high)
        return point_metrics(price[mask], fair) | {
            "coverage": float(inside.mean()),
            "mean_width": float((high - low).mean()),
        }

    bands = {band_name(lo, hi): one((price >= lo) & (price < hi)) for lo, hi in PRICE_BANDS}
    return {"overall": one(np.ones(len(price), dtype=bool)), "bands": {k: v for k, v in bands.items() if v["rows"]}}

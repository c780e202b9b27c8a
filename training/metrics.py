"""Model quality figures, apart from training and evaluation: point errors, bias, and the range's coverage
and width, overall and per asking-price band."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from pricing.deal import DEAL_RATINGS, NOT_ENOUGH_INFORMATION, deal_ratings

PRICE_BANDS: Final = ((0, 5_000), (5_000, 10_000), (10_000, 20_000), (20_000, 40_000), (40_000, float("inf")))
MAPE_MIN_PRICE: Final = 1_000.0


def band_name(low: float, high: float) -> str:
    return f"${low / 1000:.0f}k+" if high == float("inf") else f"${low / 1000:.0f}k–{high / 1000:.0f}k"


def point_metrics(price: np.ndarray, fair: np.ndarray) -> dict[str, float]:
    """MAE, median AE, RMSE, MAPE (asking ≥ $1k), R² and the median signed error as a share of the price
    (negative: priced too low)."""
    if not len(price):
        return {"rows": 0.0}
    error = fair - price
    big = price >= MAPE_MIN_PRICE
    total = float(((price - price.mean()) ** 2).sum())
    return {
        "rows": float(len(price)),
        "mae": float(np.abs(error).mean()),
        "median_ae": float(np.median(np.abs(error))),
        "rmse": float(np.sqrt((error**2).mean())),
        "mape": float((np.abs(error[big]) / price[big]).mean()) if big.any() else float("nan"),
        "median_signed_pct": float(np.median(error / price)),
        "r2": 1.0 - float((error**2).sum()) / total if total else float("nan"),
    }


def range_metrics(price: np.ndarray, fair: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict[str, float]:
    """Coverage and width of the 80% range, and the share of each deal rating (asking = the listed price)."""
    if not len(price):
        return {}
    ratings = np.array(deal_ratings(price, fair, low, high), dtype=object)
    shares = {f"rated {name}": float((ratings == name).mean()) for name in (*DEAL_RATINGS, NOT_ENOUGH_INFORMATION)}
    return {
        "coverage": float(((price >= low) & (price <= high)).mean()),
        "mean_width": float((high - low).mean()),
        "median_relative_width": float(np.median((high - low) / fair)),
    } | shares


def quality_metrics(price: np.ndarray, predicted: pd.DataFrame) -> dict[str, Any]:
    """Point and range metrics, overall and per asking-price band."""

    def one(mask: np.ndarray) -> dict[str, float]:
        fair, low, high = (predicted[c].to_numpy()[mask] for c in ("predicted_price", "price_low", "price_high"))
        return point_metrics(price[mask], fair) | range_metrics(price[mask], fair, low, high)

    bands = {band_name(lo, hi): one((price >= lo) & (price < hi)) for lo, hi in PRICE_BANDS}
    return {"overall": one(np.ones(len(price), dtype=bool)), "bands": {k: v for k, v in bands.items() if v["rows"]}}

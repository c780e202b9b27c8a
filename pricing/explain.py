"""Why a price: each feature's share of it, from the model's own tree-SHAP contributions (log link).

The trees add contributions on the log of the price, so each feature multiplies the typical price (the
bias) by ``exp(contribution)``. In dollars, the gap between the typical price and this listing's fair price
is split among the features in proportion to their log contributions: the dollar effects add up exactly to
``fair − typical``, and each keeps its sign.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

FACTOR_LABELS: Final = {
    "age": "age (year vs. posting date)", "odometer": "odometer", "miles_per_year": "miles per year",
    "lat": "latitude", "long": "longitude", "posted": "posting date (market level)",
    "manufacturer": "manufacturer", "model_base": "model", "model_two": "model and trim",
    "condition": "condition", "cylinders": "cylinders", "fuel": "fuel", "title_status": "title status",
    "transmission": "transmission", "drive": "drive", "size": "size", "type": "body type",
    "paint_color": "paint colour", "state": "state", "region": "region",
}  # fmt: skip


@dataclass(frozen=True)
class Factor:
    """One feature's share of the price: it multiplies the typical price by ``exp(log_effect)``, and
    ``dollars`` is its part of the gap between the typical price and the fair price."""

    feature: str
    label: str
    log_effect: float
    dollars: float = 0.0

    @property
    def percent(self) -> float:
        return 100 * (math.exp(self.log_effect) - 1)


def typical_price(contributions: Mapping[str, float]) -> float:
    """The model's price before any feature is read: ``exp(bias)``."""
    return math.exp(contributions["bias"])


def top_factors(contributions: Mapping[str, float], count: int = 6) -> list[Factor]:
    """The ``count`` features that move the price most, either way, with their dollars."""
    effects = {k: float(v) for k, v in contributions.items() if k != "bias"}
    total = sum(effects.values())
    base = typical_price(contributions) if "bias" in contributions else 0.0
    gap = base * math.expm1(total)  # fair − typical
    ranked = sorted(effects.items(), key=lambda kv: -abs(kv[1]))
    return [Factor(k, FACTOR_LABELS.get(k, k), v, gap * v / total if total else 0.0)
            for k, v in ranked[:count] if v != 0]  # fmt: skip

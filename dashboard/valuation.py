"""The Value-a-car form's logic, apart from Dash: form fields → a validated Listing → price, range, deal,
and the factors behind the price (the model's own tree-SHAP contributions)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from pricemyride.errors import PriceMyRideError
from pricemyride.listing import Listing
from pricemyride.parsing import field_messages
from pricing.path import price_listings

FORM_ID: Final = "dashboard-form"
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
    """One feature's share of the price: ``effect`` multiplies the typical price by ``exp(log_effect)``."""

    feature: str
    label: str
    log_effect: float

    @property
    def percent(self) -> float:
        return 100 * (math.exp(self.log_effect) - 1)


@dataclass(frozen=True)
class Valuation:
    fair: float
    low: float
    high: float
    deal: str | None
    asking: float | None
    baseline: float
    factors: list[Factor]


def listing_from_form(values: dict[str, Any]) -> Listing | dict[str, str]:
    """A Listing from the form's values (blank = not given); or, per field, why it is invalid."""
    given = {k: v for k, v in values.items() if v is not None and not (isinstance(v, str) and not v.strip())}
    try:
        return Listing.model_validate({"id": FORM_ID, "source": "dashboard", **given})
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for field, message in field_messages(exc):
            errors[field] = f"{errors[field]}; {message}" if field in errors else message
        return errors


def top_factors(contributions: dict[str, float], count: int = 6) -> list[Factor]:
    """The ``count`` features that move the price most, either way."""
    ranked = sorted(((k, v) for k, v in contributions.items() if k != "bias"), key=lambda kv: -abs(kv[1]))
    return [Factor(k, FACTOR_LABELS.get(k, k), float(v)) for k, v in ranked[:count] if v != 0]


def value(model: Any, listing: Listing) -> Valuation:
    """Price one listing with ``model`` (a PriceModel) by the pricing path, and name its top factors."""
    (priced,) = price_listings(model, 0, [listing], datetime.now(UTC))
    if isinstance(priced, str):
        raise PriceMyRideError(priced)
    contributions = model.contributions([listing.__dict__]).iloc[0].to_dict()
    return Valuation(priced.predicted_price, priced.price_low, priced.price_high, priced.deal_rating, listing.price,
                     float(math.exp(contributions["bias"])), top_factors(contributions))  # fmt: skip

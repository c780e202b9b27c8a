"""The Value-a-car form's logic, apart from Dash: form fields → a validated Listing → price, range, deal,
and the factors behind the price (the model's own tree-SHAP contributions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from pricemyride.errors import PriceMyRideError
from pricemyride.listing import Listing
from pricemyride.parsing import field_messages
from pricing.explain import Factor, top_factors, typical_price
from pricing.path import price_listings

FORM_ID: Final = "dashboard-form"


@dataclass(frozen=True)
class Valuation:
    fair: float
    low: float
    high: float
    deal: str | None
    asking: float | None
    baseline: float
    factors: list[Factor]


def form_listing(values: dict[str, Any]) -> dict[str, Any]:
    """Form values → listing fields: a picked date becomes midnight UTC of that day."""
    out = dict(values)
    if out.get("posting_date"):
        out["posting_date"] = datetime.fromisoformat(str(out["posting_date"])[:10]).replace(tzinfo=UTC).isoformat()
    return out


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


def value(model: Any, listing: Listing) -> Valuation:
    """Price one listing with ``model`` (a PriceModel) by the pricing path, and name its top factors."""
    (priced,) = price_listings(model, 0, [listing], datetime.now(UTC))
    if isinstance(priced, str):
        raise PriceMyRideError(priced)
    contributions = model.contributions([listing.__dict__]).iloc[0].to_dict()
    return Valuation(priced.predicted_price, priced.price_low, priced.price_high, priced.deal_rating, listing.price,
                     typical_price(contributions), top_factors(contributions))  # fmt: skip

"""The DataFrame adapter of the pricing path: Craigslist-format rows → the stream's verdict and price.

Each row becomes the listing event a site would send (the Craigslist fields that have a value) and goes
through the event contract (``parse_listing``), exactly as on the stream: a row the stream would
dead-letter gets ``valid = False`` and the stream's ``reason``, and no price. Valid rows are priced by
``pricing.path.price_listings`` in one call.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import orjson
import pandas as pd

from pricemyride.datafile import given_fields
from pricemyride.errors import InvalidListing
from pricemyride.listing import Listing
from pricemyride.parsing import parse_listing
from pricing.path import Model, price_listings

PRICE_COLUMNS: Final = ("predicted_price", "price_low", "price_high", "deal_rating")


def row_event(row: dict[str, Any], fallback_id: str) -> bytes:
    """A file row as the listing event a site would send: the Craigslist fields that have a value."""
    return orjson.dumps({"id": fallback_id} | given_fields(row))


def validate_rows(frame: pd.DataFrame, stem: str) -> tuple[list[Listing | None], list[str]]:
    """Per row, the validated listing (or None) and the stream's reason for refusing it ('' when valid)."""
    listings: list[Listing | None] = []
    reasons: list[str] = []
    records: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    for number, row in enumerate(records):
        try:
            listings.append(parse_listing(row_event(row, f"{stem}-r{number}")))
            reasons.append("")
        except InvalidListing as exc:
            listings.append(None)
            reasons.append(str(exc))
    return listings, reasons


def price_columns(model: Model, version: int, listings: list[Listing | None], reasons: list[str]) -> pd.DataFrame:
    """The price columns for every row: priced where valid, empty (with the reason) where not."""
    valid = [i for i, listing in enumerate(listings) if listing is not None]
    priced = price_listings(model, version, [listings[i] for i in valid], datetime.now(UTC))  # type: ignore[misc]
    values: dict[str, list[Any]] = {column: [None] * len(listings) for column in PRICE_COLUMNS}
    for i, outcome in zip(valid, priced, strict=True):
        if isinstance(outcome, str):
            reasons[i] = outcome
            continue
        for column in PRICE_COLUMNS:
            values[column][i] = getattr(outcome, column)
    out = pd.DataFrame(values).astype({c: "float64" for c in PRICE_COLUMNS[:3]})
    out["valid"] = [not reason for reason in reasons]
    out["reason"] = reasons
    out["model_version"] = version
    return out


def price_frame(model: Model, version: int, frame: pd.DataFrame, stem: str = "row") -> pd.DataFrame:
    """``valid``, ``reason``, the price columns and ``model_version`` for every row of ``frame`` (same index);
    rows without an id are known as ``<stem>-r<row number>``."""
    listings, reasons = validate_rows(frame, stem)
    return price_columns(model, version, listings, reasons).set_axis(frame.index)

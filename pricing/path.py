"""Listings → fair price, 80% range and deal rating, as the rows the store keeps: the one pricing path."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import orjson

from pricemyride.listing import Listing
from pricemyride.storage import PredictionRow
from pricing.deal import deal_ratings

log = logging.getLogger(__name__)


class Model(Protocol):
    def price_ranges(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Per listing (its validated fields), the fair price and its range: an (n, 3) array."""
        ...


def listing_json(listing: Listing) -> str:
    """``listing.model_dump_json()``, a third of the time: orjson on the validated fields (tested equal)."""
    return orjson.dumps(listing.__dict__, option=orjson.OPT_UTC_Z).decode()


def predict_prices(model: Model, listings: Sequence[Listing]) -> np.ndarray:
    """(n, 3) array: fair price, range low, range high."""
    return predict_ranges(model, [listing.__dict__ for listing in listings])


def predict_ranges(model: Model, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """(n, 3) array for validated listings' fields (or variants of them): fair price, range low, range high."""
    values = np.asarray(model.price_ranges(records), dtype="float64")
    if values.shape != (len(records), 3):
        raise ValueError(f"model returned shape {values.shape} for {len(records)} listings")
    return values


def predict_or_isolate(model: Model, listings: Sequence[Listing]) -> tuple[np.ndarray, dict[int, str]]:
    """One vectorised call; if it fails, price listings one by one so only the culprits are lost.

    Returns the prices (NaN where none) and, per failed position, why.
    """
    try:
        return predict_prices(model, listings), {}
    except Exception:
        log.exception("batch prediction failed; isolating the listings that break the model")
    prices, failures = np.full((len(listings), 3), np.nan), {}
    for i, listing in enumerate(listings):
        try:
            prices[i] = predict_prices(model, [listing])[0]
        except Exception as exc:  # noqa: BLE001
            failures[i] = f"model: could not price this listing ({type(exc).__name__}: {exc})"
    return prices, failures


def price_listings(model: Model, version: int, listings: Sequence[Listing], now: datetime) -> list[PredictionRow | str]:
    """Per listing, the row to store — or why the model could not price it. One vectorised model call."""
    prices, failures = predict_or_isolate(model, listings)
    return priced_rows(prices, failures, version, listings, now)


def priced_rows(
    prices: np.ndarray, failures: Mapping[int, str], version: int, listings: Sequence[Listing], now: datetime
) -> list[PredictionRow | str]:
    """The rows to store for ``listings`` from their model prices (fair, low, high), or why there is none."""
    asking = np.array([np.nan if x.price is None else x.price for x in listings], dtype="float64")
    ratings = deal_ratings(asking, prices[:, 0], prices[:, 1], prices[:, 2])
    usable = np.isfinite(prices).all(axis=1) & (prices[:, 0] > 0)
    out: list[PredictionRow | str] = []
    for i, ((fair, low, high), listing) in enumerate(zip(np.round(prices, 2).tolist(), listings, strict=True)):
        if i in failures or not usable[i]:
            out.append(failures.get(i, f"model: expected a positive finite price, got {prices[i, 0]!r}"))
            continue
        out.append(PredictionRow(listing.source, listing.id, version, listing.event_id, fair, low, high, ratings[i],
                                 listing.price, listing.event_time, now, listing_json(listing)))  # fmt: skip
    return out

"""Pure steps of scoring a micro-batch: validate, build the model input, predict, shape the output."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from pricemyride.errors import InvalidListing
from pricemyride.events import FEATURE_FIELDS, Listing, Prediction, parse_listing
from pricemyride.storage import DeadLetterRow, PredictionRow
from training.deal import deal_ratings

log = logging.getLogger(__name__)
PRICE_COLUMNS = ("predicted_price", "price_low", "price_high")


class Model(Protocol):
    def predict_range(self, frame: pd.DataFrame) -> pd.DataFrame: ...


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A consumed Kafka message, reduced to what scoring and dead-lettering need."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Published:
    """A prediction as it goes to Kafka: the listing's partition, the key and the JSON value."""

    partition: int
    key: bytes
    value: bytes


@dataclass(frozen=True)
class ScoredBatch:
    """The outcome of one micro-batch: rows to store and events to publish.

    ``partitions[i]`` is the ``listings`` partition that ``predictions[i]`` came from.
    """

    predictions: list[Prediction]
    dead_letters: list[DeadLetterRow]
    partitions: list[int] = field(default_factory=list)

    @property
    def published(self) -> list[Published]:
        return [
            Published(partition, p.listing_id.encode(), p.model_dump_json().encode())
            for partition, p in zip(self.partitions, self.predictions, strict=True)
        ]

    def prediction_rows(self) -> list[PredictionRow]:
        return [
            PredictionRow(
                p.listing_id,
                p.model_version,
                p.listing.event_id,
                p.predicted_price,
                p.price_low,
                p.price_high,
                p.deal_rating,
                p.asking_price,
                p.event_time,
                p.scored_at,
                p.listing.model_dump_json(),
            )
            for p in self.predictions
        ]


def dead_letter(message: RawMessage, reason: str, now: datetime) -> DeadLetterRow:
    return DeadLetterRow(message.topic, message.partition, message.offset, message.key, message.value, reason, now)


def validate(
    messages: Sequence[RawMessage], now: datetime
) -> tuple[list[tuple[RawMessage, Listing]], list[DeadLetterRow]]:
    """Split a batch into valid listings and dead letters with their reasons; never raises."""
    valid: list[tuple[RawMessage, Listing]] = []
    invalid: list[DeadLetterRow] = []
    for message in messages:
        try:
            valid.append((message, parse_listing(message.value)))  # type: ignore[arg-type]
        except InvalidListing as exc:
            invalid.append(dead_letter(message, str(exc), now))
    return valid, invalid


def model_frame(listings: Sequence[Listing]) -> pd.DataFrame:
    """The model's input: one row per listing, the feature fields as columns (built column by column)."""
    return pd.DataFrame({name: [getattr(listing, name) for listing in listings] for name in FEATURE_FIELDS})


def predict_prices(model: Model, listings: Sequence[Listing]) -> np.ndarray:
    """(n, 3) array: fair price, range low, range high."""
    out = model.predict_range(model_frame(listings))
    values = out[list(PRICE_COLUMNS)].to_numpy(dtype="float64")
    if values.shape != (len(listings), 3):
        raise ValueError(f"model returned shape {values.shape} for {len(listings)} listings")
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


def score_batch(model: Model, version: int, messages: Sequence[RawMessage]) -> ScoredBatch:
    """Validate and score one batch; a listing the model cannot price is dead-lettered with the reason."""
    now = datetime.now(UTC)
    valid, dead = validate(messages, now)
    if not valid:
        return ScoredBatch([], dead)
    listings = [listing for _, listing in valid]
    prices, failures = predict_or_isolate(model, listings)
    asking = np.array([np.nan if x.price is None else x.price for x in listings], dtype="float64")
    ratings = deal_ratings(asking, prices[:, 0], prices[:, 1], prices[:, 2])
    predictions, partitions = [], []
    for i, (message, listing) in enumerate(valid):
        fair, low, high = prices[i].tolist()
        if i in failures or not (math.isfinite(fair) and fair > 0 and math.isfinite(low) and math.isfinite(high)):
            reason = failures.get(i, f"model: expected a positive finite price, got {fair!r}")
            dead.append(dead_letter(message, reason, now))
            continue
        predictions.append(to_prediction(listing, (fair, low, high), ratings[i], version, now))
        partitions.append(message.partition)
    return ScoredBatch(predictions, dead, partitions)


def to_prediction(
    listing: Listing, price: tuple[float, float, float], rating: str | None, version: int, now: datetime
) -> Prediction:
    fair, low, high = (round(p, 2) for p in price)
    return Prediction.model_construct(  # every field is built here from validated parts: no re-validation
        listing_id=listing.id,
        model_version=version,
        predicted_price=fair,
        price_low=low,
        price_high=high,
        deal_rating=rating,  # type: ignore[arg-type]
        asking_price=listing.price,
        event_time=listing.event_time,
        scored_at=now,
        listing=listing,
    )


def dlq_headers(row: DeadLetterRow) -> list[tuple[str, bytes]]:
    """Kafka Connect's dead-letter convention: the original bytes as value, the why in headers."""
    fields: dict[str, Any] = {
        "reason": row.reason,
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
        "failed_at": row.failed_at.isoformat(),
    }
    return [(f"dlq.{k}", str(v).encode()) for k, v in fields.items()]

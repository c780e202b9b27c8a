"""The messages the services send each other: ``Prediction`` (on ``price-predictions``), ``RetrainRequest``
and ``ModelUpdate``. The listing itself is ``pricemyride.listing``, its rules ``pricemyride.rules`` and its
parser ``pricemyride.parsing``.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pricemyride.listing import Listing
from pricemyride.rules import MAX_FAIR_PRICE, MAX_PRICE


class Prediction(BaseModel):
    """A scored listing as published to ``price-predictions``: the price, who made it, and the listing."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    source: str = Field("unknown", description="The listing site that sent the listing: (source, listing_id) is it.")
    listing_id: str
    model_version: int
    predicted_price: float = Field(ge=0, le=MAX_FAIR_PRICE)
    price_low: float = Field(ge=0, le=MAX_FAIR_PRICE, description="Low end of the 80% fair-price range.")
    price_high: float = Field(ge=0, le=MAX_FAIR_PRICE, description="High end of the 80% fair-price range.")
    deal_rating: Literal["great", "good", "fair", "high", "overpriced", "not enough information"] | None = Field(
        description="Where the asking price falls against the range; 'not enough information' where the range "
        "is too wide to judge; None without an asking price."
    )
    asking_price: float | None = Field(ge=0, le=MAX_PRICE)
    event_time: AwareDatetime
    scored_at: AwareDatetime
    listing: Listing


class RetrainRequest(BaseModel):
    """Published on ``retrain-requests`` once per drift episode by the drift worker."""

    model_config = ConfigDict(frozen=True)

    request_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    requested_at: AwareDatetime
    reason: str = Field(description="The policy signals that fired, e.g. 'realized_error, asking_price'.")
    champion_version: int
    window_start: AwareDatetime
    window_end: AwareDatetime
    metrics: dict[str, Any] = Field(default_factory=dict)


class ModelUpdate(BaseModel):
    """Published on ``model-updates`` when a version becomes the champion (``alias``: the champion alias; workers
    hot-swap to it), or starts or stops scoring in shadow (``alias``: the shadow alias; workers look up the
    recorded shadow). ``promoted_at`` is when it was sent."""

    model_config = ConfigDict(frozen=True)

    model: str = Field("", description="The registered model's name; workers of another model ignore it.")
    version: int
    alias: str
    promoted_at: AwareDatetime
    reason: str

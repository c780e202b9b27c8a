"""The ``Listing`` event: what a listing site publishes, one field per line, each with its rule
(``pricemyride.rules``); ``listing_json_schema`` is the contract sites get (``schemas/listing.schema.json``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pricemyride.rules import (
    CONDITIONS,
    CYLINDERS,
    DRIVES,
    EVENT_ID,
    FUELS,
    LISTING_ID,
    MAX_ODOMETER,
    MAX_PRICE,
    MIN_YEAR,
    MOMENT,
    PAINT_COLORS,
    SIZES,
    SOURCE,
    TEXT,
    TITLE_STATUSES,
    TRANSMISSIONS,
    TYPES,
    US_STATES,
    YEAR,
    one_of,
    ranged,
)

Text = Annotated[str | None, TEXT]
Moment = Annotated[AwareDatetime, MOMENT]


class Listing(BaseModel):
    """A used-car listing as a listing site publishes it to the ``listings`` topic.

    Clock-relative rules the JSON Schema cannot state: ``year`` at most next year; ``event_time`` and
    ``posting_date`` at most one day ahead of the receiving worker's clock. Duplicate keys and events over
    64 KiB are refused too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, LISTING_ID] = Field(
        description="The listing site's own id (text, or a whole number 0 … 2**63-1); the Kafka key."
    )
    event_id: Annotated[uuid.UUID, EVENT_ID] = Field(default_factory=uuid.uuid4, description="Unique per event sent.")
    source: Annotated[str, SOURCE] = Field("unknown", description="Who sent it.")
    event_time: Moment = Field(
        default_factory=lambda: datetime.now(UTC),
        description="When the site sent the event: 1990 … now + 1 day, ISO 8601 with offset.",
    )
    region: Text = None
    price: Annotated[float | None, ranged(0, MAX_PRICE)] = Field(None, description="Asking price, USD.")
    year: Annotated[int | None, YEAR] = Field(None, description=f"Model year, {MIN_YEAR} … next year.")
    manufacturer: Text = None
    model: Text = None
    condition: Annotated[str | None, one_of(CONDITIONS)] = None
    cylinders: Annotated[str | None, one_of(CYLINDERS)] = None
    fuel: Annotated[str | None, one_of(FUELS)] = None
    odometer: Annotated[float | None, ranged(0, MAX_ODOMETER)] = Field(None, description="Miles.")
    title_status: Annotated[str | None, one_of(TITLE_STATUSES)] = None
    transmission: Annotated[str | None, one_of(TRANSMISSIONS)] = None
    drive: Annotated[str | None, one_of(DRIVES)] = None
    size: Annotated[str | None, one_of(SIZES)] = None
    type: Annotated[str | None, one_of(TYPES)] = None
    paint_color: Annotated[str | None, one_of(PAINT_COLORS)] = None
    state: Annotated[str | None, one_of(US_STATES, "a two-letter US state code")] = None
    lat: Annotated[float | None, ranged(-90, 90)] = None
    long: Annotated[float | None, ranged(-180, 180)] = None
    posting_date: Moment | None = Field(
        None, description="When the listing was posted: 1990 … now + 1 day, ISO 8601 with offset."
    )


FEATURE_FIELDS: Final = tuple(
    name for name in Listing.model_fields if name not in {"id", "event_id", "source", "event_time", "price"}
)


def listing_json_schema() -> dict[str, Any]:
    """The JSON Schema of the ``Listing`` event, for listing sites."""
    schema = Listing.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "PriceMyRide Listing event"
    return schema

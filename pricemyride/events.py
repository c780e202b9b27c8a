"""The event contract: one ``Listing`` in, one ``Prediction`` out, JSON on the wire.

``parse_listing`` is the single place where a raw Kafka value becomes a validated listing; every rule
(types, case-insensitive enums, ranges, string bounds) lives on the models below. Errors read
``field: what was expected, got what arrived``.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from pricemyride.errors import InvalidListing

T = TypeVar("T")

MAX_TEXT: Final = 200
UNPRINTABLE: Final = re.compile("[\x00-\x1f\ud800-\udfff\ufffd]")  # control, lone surrogate, replacement
MAX_EVENT_BYTES: Final = 64 * 1024
MEMO_SIZE: Final = 16_384
MIN_YEAR: Final = 1900
MAX_ODOMETER: Final = 2_000_000

CONDITIONS: Final = ("excellent", "fair", "good", "like new", "new", "salvage")
CYLINDERS: Final = (*tuple(f"{n} cylinders" for n in (3, 4, 5, 6, 8, 10, 12)), "other")
FUELS: Final = ("diesel", "electric", "gas", "hybrid", "other")
TITLE_STATUSES: Final = ("clean", "lien", "missing", "parts only", "rebuilt", "salvage")
TRANSMISSIONS: Final = ("automatic", "manual", "other")
DRIVES: Final = ("4wd", "fwd", "rwd")
SIZES: Final = ("compact", "full-size", "mid-size", "sub-compact")
TYPES: Final = (
    "bus", "convertible", "coupe", "hatchback", "mini-van", "offroad", "other", "pickup",
    "sedan", "suv", "truck", "unknown", "van", "wagon",
)  # fmt: skip
PAINT_COLORS: Final = (
    "black", "blue", "brown", "custom", "green", "grey", "orange", "purple", "red",
    "silver", "white", "yellow",
)  # fmt: skip
US_STATES: Final = frozenset(
    [
        "ak",
        "al",
        "ar",
        "az",
        "ca",
        "co",
        "ct",
        "dc",
        "de",
        "fl",
        "ga",
        "hi",
        "ia",
        "id",
        "il",
        "in",
        "ks",
        "ky",
        "la",
        "ma",
        "md",
        "me",
        "mi",
        "mn",
        "mo",
        "ms",
        "mt",
        "nc",
        "nd",
        "ne",
        "nh",
        "nj",
        "nm",
        "nv",
        "ny",
        "oh",
        "ok",
        "or",
        "pa",
        "ri",
        "sc",
        "sd",
        "tn",
        "tx",
        "ut",
        "va",
        "vt",
        "wa",
        "wi",
        "wv",
        "wy",
    ]
)


def _remembered(check: Callable[[Any], T]) -> Callable[[Any], T]:
    """``check`` with its answers for text remembered: the checks are pure, and a stream repeats the same
    makes, models, regions and states all day. Only accepted text is remembered, at most ``MEMO_SIZE``."""
    seen: dict[str, T] = {}

    def remembered(value: Any) -> T:
        if type(value) is not str:
            return check(value)
        if value in seen:
            return seen[value]
        result = check(value)
        if len(seen) >= MEMO_SIZE:
            seen.clear()
        seen[value] = result
        return result

    return remembered


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}...' ({len(str(value))} characters)"


def _text(value: Any, max_len: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {_shown(value)}")
    if len(value) > max_len:
        raise ValueError(f"expected at most {max_len} characters, got {len(value)}")
    if UNPRINTABLE.search(value):
        raise ValueError(f"expected printable text, got control or replacement characters in {_shown(value)}")
    stripped = value.strip()
    return stripped or None


NUMBER_INPUTS: Final = (int, float, str)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) is float:  # the common case, checked first (validation is a third of a worker's time)
        number = value
    elif isinstance(value, bool) or not isinstance(value, NUMBER_INPUTS):
        raise ValueError(f"expected a number, got {_shown(value)}")
    else:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {_shown(value)}") from None
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {_shown(value)}")
    return number


def _ranged(low: float, high: float) -> BeforeValidator:
    def check(value: Any) -> float | None:
        number = _number(value)
        if number is not None and not low <= number <= high:
            raise ValueError(f"expected {low:g} … {high:g}, got {number:g}")
        return number

    return BeforeValidator(check)


def _year(value: Any) -> int | None:
    number = _number(value)
    if number is None:
        return None
    last = datetime.now(UTC).year + 1
    if number != int(number) or not MIN_YEAR <= number <= last:
        raise ValueError(f"expected a whole year {MIN_YEAR} … {last}, got {number:g}")
    return int(number)


def _one_of(choices: tuple[str, ...]) -> BeforeValidator:
    @_remembered
    def check(value: Any) -> str | None:
        text = _text(value)
        if text is None:
            return None
        lowered = text.lower()
        if lowered not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}; got {_shown(value)}")
        return lowered

    return BeforeValidator(check)


@_remembered
def _lower_text(value: Any) -> str | None:
    text = _text(value)
    return text.lower() if text is not None else None


def _listing_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = _text(value, max_len=64)
    if text is None:
        raise ValueError("expected a non-empty listing id, got an empty one")
    return text


@_remembered
def _state(value: Any) -> str | None:
    text = _lower_text(value)
    if text is not None and text not in US_STATES:
        raise ValueError(f"expected a two-letter US state code, got {_shown(value)}")
    return text


Text = Annotated[str | None, BeforeValidator(_lower_text)]


class Listing(BaseModel):
    """A used-car listing as a listing site publishes it to the ``listings`` topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, BeforeValidator(_listing_id)] = Field(description="The listing site's own id; the Kafka key.")
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Unique per event sent.")
    source: Annotated[str, BeforeValidator(_remembered(_text))] = Field("unknown", description="Who sent it.")
    event_time: AwareDatetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When the site sent the event."
    )
    region: Text = None
    price: Annotated[float | None, _ranged(0, 1e12)] = Field(None, description="Asking price, USD.")
    year: Annotated[int | None, BeforeValidator(_year)] = None
    manufacturer: Text = None
    model: Text = None
    condition: Annotated[str | None, _one_of(CONDITIONS)] = None
    cylinders: Annotated[str | None, _one_of(CYLINDERS)] = None
    fuel: Annotated[str | None, _one_of(FUELS)] = None
    odometer: Annotated[float | None, _ranged(0, MAX_ODOMETER)] = Field(None, description="Miles.")
    title_status: Annotated[str | None, _one_of(TITLE_STATUSES)] = None
    transmission: Annotated[str | None, _one_of(TRANSMISSIONS)] = None
    drive: Annotated[str | None, _one_of(DRIVES)] = None
    size: Annotated[str | None, _one_of(SIZES)] = None
    type: Annotated[str | None, _one_of(TYPES)] = None
    paint_color: Annotated[str | None, _one_of(PAINT_COLORS)] = None
    state: Annotated[str | None, BeforeValidator(_state)] = None
    lat: Annotated[float | None, _ranged(-90, 90)] = None
    long: Annotated[float | None, _ranged(-180, 180)] = None
    posting_date: AwareDatetime | None = None


FEATURE_FIELDS: Final = tuple(
    name for name in Listing.model_fields if name not in {"id", "event_id", "source", "event_time", "price"}
)


class Prediction(BaseModel):
    """A scored listing as published to ``price-predictions``: the price, who made it, and the listing."""

    model_config = ConfigDict(frozen=True)

    listing_id: str
    model_version: int
    predicted_price: float
    price_low: float = Field(description="Low end of the 80% fair-price range.")
    price_high: float = Field(description="High end of the 80% fair-price range.")
    deal_rating: Literal["great", "good", "fair", "high", "overpriced"] | None = Field(
        description="Where the asking price falls against the range; None without an asking price."
    )
    asking_price: float | None
    event_time: AwareDatetime
    scored_at: AwareDatetime
    listing: Listing


def field_messages(error: ValidationError) -> list[tuple[str, str]]:
    """(field, message) per problem, in the words the stream's dead letters use."""
    parts = []
    for item in error.errors(include_url=False):
        field = ".".join(str(p) for p in item["loc"]) or "listing"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "required field is missing"
        elif item["type"] == "extra_forbidden":
            message = f"unknown field, got {_shown(item['input'])}"
        elif item["type"] not in {"value_error"}:
            message = f"{message}, got {_shown(item['input'])}"
        parts.append((field, message))
    return parts


def _reason(error: ValidationError) -> str:
    return "; ".join(f"{field}: {message}" for field, message in field_messages(error))


def parse_listing(raw: bytes | str) -> Listing:
    """Validate one raw Kafka value; raise ``InvalidListing`` naming what was expected and what arrived."""
    if raw is None:
        raise InvalidListing("listing: expected a JSON object, got an empty message")
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidListing(f"listing: expected at most {MAX_EVENT_BYTES} bytes, got {len(raw)}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise InvalidListing(f"listing: expected UTF-8 text, got invalid bytes ({exc.reason})") from exc
    try:
        data = orjson.loads(text)  # strict JSON (no NaN), 3-4x faster than the json module
    except ValueError as exc:
        raise InvalidListing(f"listing: expected a JSON object, got text that is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidListing(f"listing: expected a JSON object, got {type(data).__name__}")
    try:
        return Listing.model_validate(data)
    except ValidationError as exc:
        raise InvalidListing(_reason(exc)) from exc


def listing_json_schema() -> dict[str, Any]:
    """The JSON Schema of the ``Listing`` event, for listing sites."""
    schema = Listing.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "PriceMyRide Listing event"
    return schema


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
    """Published on ``model-updates`` when a version becomes the champion; workers hot-swap to it."""

    model_config = ConfigDict(frozen=True)

    version: int
    alias: str
    promoted_at: AwareDatetime
    reason: str

"""The event contract: one ``Listing`` in, one ``Prediction`` out, JSON on the wire.

``parse_listing`` is the single place where a raw Kafka value becomes a validated listing; every rule
(types, case-insensitive enums, ranges, string bounds) lives on the models below. Errors read
``field: what was expected, got what arrived``.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, TypeVar

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)

from pricemyride.errors import InvalidListing

T = TypeVar("T")

MAX_TEXT: Final = 200
MAX_ID: Final = 64
MAX_ID_NUMBER: Final = 2**63 - 1
# Refused in any text: Unicode categories Cc (control, incl. DEL and U+0085), Cf (format: U+200B, U+202E,
# U+FEFF…), Zl and Zp (U+2028, U+2029), lone surrogates (Cs) and U+FFFD. One character class, written out
# so the JSON Schema can carry it too; tests/unit/test_contract.py checks it against unicodedata.
FORBIDDEN_CHARS: Final = (
    r"\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    r"\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\ufffd"
    r"\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    r"\U000e0020-\U000e007f"
)
FORBIDDEN_PATTERN: Final = f"[{FORBIDDEN_CHARS}]"  # schemas say "not this": unanchored, read alike everywhere
# White space that is not forbidden (str.isspace() less Cc/Zl/Zp): what str.strip() removes from valid text.
WHITE: Final = r"[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]"
BLANK_PATTERN: Final = rf"^{WHITE}*$"  # a blank id or source is refused; blank text means not given
UNPRINTABLE: Final = re.compile(FORBIDDEN_PATTERN)
# ISO 8601 date-time with a UTC offset; the offset may omit its colon (Craigslist's own "-0500").
DATE_TIME_SHAPE: Final = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$"
)
DATE_TIME_PATTERN: Final = DATE_TIME_SHAPE.replace("^[0-9]{4}-", "^(199[0-9]|[2-9][0-9]{3})-", 1)
UUID_PATTERN: Final = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
MAX_EVENT_BYTES: Final = 64 * 1024
MAX_NESTING: Final = 8  # a listing is one flat object; deeper JSON is refused before it is decoded
MAX_KEYS: Final = 64  # a listing has 25 fields; an object of thousands of keys is refused by its count
MAX_REASON_BYTES: Final = 1024
MEMO_SIZE: Final = 16_384
MIN_YEAR: Final = 1900
MIN_DATE_YEAR: Final = 1990
FUTURE_SLACK: Final = timedelta(days=1)
MAX_ODOMETER: Final = 2_000_000
MAX_PRICE: Final = 5_000_000
MAX_FAIR_PRICE: Final = 10 * MAX_PRICE  # a model's price beyond this is no price (a record the monitor skips)
DUPLICATE_KEYS_HINT: Final = re.compile(r'"\s*:')
KINDS: Final = {list: "items", dict: "keys"}
SHORT_REPR: Final = reprlib.Repr()  # Python 3.11's takes no arguments
SHORT_REPR.maxlevel, SHORT_REPR.maxlist, SHORT_REPR.maxdict, SHORT_REPR.maxstring = 3, 4, 4, 40
# A JSON string (skipped whole) or one bracket: what the nesting check walks when brackets are many.
BRACKET_OR_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class Clock:
    """The clock-relative bounds (next year; now + 1 day), read from the clock at most once a second: a
    worker checks thousands of listings a second, and a bound a second old is as good with a day's slack."""

    def __init__(self) -> None:
        self.until = 0.0
        self._latest = datetime.now(UTC)
        self._last_year = 0

    def _refresh(self) -> None:
        now = time.time()
        if now >= self.until:
            self.until = now + 1.0
            self._latest = datetime.fromtimestamp(now, UTC) + FUTURE_SLACK
            self._last_year = datetime.now(UTC).year + 1

    def latest(self) -> datetime:
        """The latest accepted date-time (now + 1 day)."""
        self._refresh()
        return self._latest

    def last_year(self) -> int:
        """The latest accepted model year (next year)."""
        self._refresh()
        return self._last_year


CLOCK: Final = Clock()

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
    """What arrived, in at most ~60 characters whatever it is: an array or object is named by its size, never
    printed (a ``repr`` of 1,000 nested arrays raises RecursionError), a long text cut with its length."""
    if isinstance(value, list | dict):
        text = SHORT_REPR.repr(value)  # reprlib stops at a few levels: no recursion
        if len(text) <= 40:
            return text
        return f"an {'array' if isinstance(value, list) else 'object'} of {len(value):,} {KINDS[type(value)]}"
    if isinstance(value, str) and len(value) > 40:
        return f"{repr(value[:40])[:37]}...' ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}... ({len(text):,} characters)"


def _text(value: Any, max_len: int = MAX_TEXT) -> str | None:
    """Printable text of at most ``max_len`` characters; blank text means "not given" (None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {_shown(value)}")
    if len(value) > max_len:
        raise ValueError(f"expected at most {max_len} characters, got {len(value)}")
    if UNPRINTABLE.search(value):
        raise ValueError(f"expected printable text (no control or format characters), got {_shown(value)}")
    stripped = value.strip()
    return stripped or None


def _number(value: Any) -> float | None:
    """A JSON number (text such as "2015" is refused: the contract says number)."""
    if value is None:
        return None
    if type(value) is float:  # the common case, checked first (validation is a third of a worker's time)
        number = value
    elif type(value) is int:
        number = float(value)
    else:
        raise ValueError(f"expected a number, got {_shown(value)}")
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {_shown(value)}")
    return number


def _ranged(low: float, high: float) -> BeforeValidator:
    def check(value: Any) -> float | None:
        number = _number(value)
        if number is not None and not low <= number <= high:
            raise ValueError(f"expected {low:,.0f} … {high:,.0f}, got {number:g}")
        return number

    return BeforeValidator(check)


def _year(value: Any) -> int | None:
    number = _number(value)
    if number is None:
        return None
    last = CLOCK.last_year()
    if number != int(number) or not MIN_YEAR <= number <= last:
        raise ValueError(f"expected a whole year {MIN_YEAR} … {last}, got {number:g}")
    return int(number)


def _one_of(choices: Collection[str], described: str = "") -> BeforeValidator:
    """One of ``choices`` in any case, surrounding white space ignored; blank or null means not given."""
    listed = described or f"one of {', '.join(sorted(choices))}"
    known = frozenset(choices)

    @_remembered
    def check(value: Any) -> str | None:
        text = _text(value)
        if text is None:
            return None
        lowered = text.lower()
        if lowered not in known or not text.isascii():  # ASCII only: the Kelvin sign lowers to 'k'
            raise ValueError(f"expected {listed} (any case) or null; got {_shown(value)}")
        return lowered

    return BeforeValidator(check)


@_remembered
def _lower_text(value: Any) -> str | None:
    text = _text(value)
    return text.lower() if text is not None else None


def _listing_id(value: Any) -> str:
    if type(value) is int or (type(value) is float and value.is_integer()):
        if not 0 <= value <= MAX_ID_NUMBER:
            raise ValueError(f"expected a listing id 0 … 2**63-1 or text, got {_shown(value)}")
        return str(int(value))
    text = _text(value, max_len=MAX_ID)
    if text is None:
        raise ValueError(f"expected a non-empty listing id (text or a whole number), got {_shown(value)}")
    return text


@_remembered
def _source(value: Any) -> str:
    text = _text(value)
    if text is None:
        raise ValueError(f"expected a non-blank source name, got {_shown(value)}")
    return text


def _date_time(value: Any) -> datetime:
    """ISO 8601 text with a UTC offset, in 1990 or later as written and at most one day ahead of this clock,
    as a datetime (built here once: pydantic takes it as it is)."""
    if isinstance(value, datetime):  # built in code (producers, tests), not read from JSON
        return _in_range(value)
    if not isinstance(value, str) or not DATE_TIME.fullmatch(value):
        raise ValueError(f"expected an ISO 8601 date-time with a UTC offset, got {_shown(value)}")
    try:
        moment = datetime.fromisoformat(value.replace("t", "T").replace("z", "Z"))
    except ValueError:
        raise ValueError(f"expected a date-time that exists in the calendar, got {_shown(value)}") from None
    return _in_range(moment)


def _in_range(value: datetime) -> datetime:
    """Year 1990 or later as written, and at most one day ahead of this clock."""
    if value.year < MIN_DATE_YEAR:
        raise ValueError(f"expected a date-time in {MIN_DATE_YEAR} or later, got {value.isoformat()}")
    latest = CLOCK.latest()
    if value > latest:
        raise ValueError(f"expected a date-time no later than {latest:%Y-%m-%d %H:%M} UTC, got {value.isoformat()}")
    return value


def _event_id(value: Any) -> Any:
    if isinstance(value, uuid.UUID) or (isinstance(value, str) and UUID_TEXT.fullmatch(value)):
        return value
    raise ValueError(f"expected a UUID like 123e4567-e89b-12d3-a456-426614174000, got {_shown(value)}")


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _number_schema(low: float, high: float) -> dict[str, Any]:
    return _nullable({"type": "number", "minimum": low, "maximum": high})


def _any_case(choice: str) -> str:
    """A regex for ``choice`` in any case, written so ECMA-262 and Python read it alike."""
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else (f"\\{c}" if c in ".^$*+?()[]{}|\\/" else c) for c in choice)


def _enum_schema(choices: Collection[str]) -> dict[str, Any]:
    """The canonical values as an enum; the same in any case, padded, or blank (not given) by a pattern."""
    alternatives = "|".join(_any_case(c) for c in sorted(choices, key=lambda c: (-len(c), c)))
    pattern = rf"^{WHITE}*(?:(?:{alternatives}){WHITE}*)?$"
    lenient = {"type": "string", "maxLength": MAX_TEXT, "pattern": pattern} | PRINTABLE
    return {"anyOf": [{"type": "string", "enum": sorted(choices)}, lenient, {"type": "null"}]}


PRINTABLE: Final = {"not": {"pattern": FORBIDDEN_PATTERN}}
PRINTABLE_NON_BLANK: Final = {"not": {"anyOf": [{"pattern": FORBIDDEN_PATTERN}, {"pattern": BLANK_PATTERN}]}}
TEXT_SCHEMA: Final = _nullable({"type": "string", "maxLength": MAX_TEXT} | PRINTABLE)
SOURCE_SCHEMA: Final = {"type": "string", "maxLength": MAX_TEXT} | PRINTABLE_NON_BLANK
ID_SCHEMA: Final = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_ID} | PRINTABLE_NON_BLANK,
        {"type": "integer", "minimum": 0, "maximum": MAX_ID_NUMBER},
    ]
}
UUID_SCHEMA: Final = {"type": "string", "format": "uuid", "pattern": UUID_PATTERN} | PRINTABLE
DATE_TIME_SCHEMA: Final = {"type": "string", "pattern": DATE_TIME_PATTERN} | PRINTABLE
YEAR_SCHEMA: Final = _nullable({"type": "integer", "minimum": MIN_YEAR})
DATE_TIME: Final = re.compile(DATE_TIME_SHAPE)
UUID_TEXT: Final = re.compile(UUID_PATTERN)
Text = Annotated[str | None, BeforeValidator(_lower_text), WithJsonSchema(TEXT_SCHEMA)]
Moment = Annotated[AwareDatetime, BeforeValidator(_date_time)]


class Listing(BaseModel):
    """A used-car listing as a listing site publishes it to the ``listings`` topic.

    Clock-relative rules the JSON Schema cannot state: ``year`` at most next year; ``event_time`` and
    ``posting_date`` at most one day ahead of the receiving worker's clock. Duplicate keys and events over
    64 KiB are refused too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, BeforeValidator(_listing_id), WithJsonSchema(ID_SCHEMA)] = Field(
        description="The listing site's own id (text, or a whole number 0 … 2**63-1); the Kafka key."
    )
    event_id: Annotated[uuid.UUID, BeforeValidator(_event_id), WithJsonSchema(UUID_SCHEMA)] = Field(
        default_factory=uuid.uuid4, description="Unique per event sent."
    )
    source: Annotated[str, BeforeValidator(_source), WithJsonSchema(SOURCE_SCHEMA)] = Field(
        "unknown", description="Who sent it."
    )
    event_time: Annotated[Moment, WithJsonSchema(DATE_TIME_SCHEMA)] = Field(
        default_factory=lambda: datetime.now(UTC),
        description="When the site sent the event: 1990 … now + 1 day, ISO 8601 with offset.",
    )
    region: Text = None
    price: Annotated[float | None, _ranged(0, MAX_PRICE), WithJsonSchema(_number_schema(0, MAX_PRICE))] = Field(
        None, description="Asking price, USD."
    )
    year: Annotated[int | None, BeforeValidator(_year), WithJsonSchema(YEAR_SCHEMA)] = Field(
        None, description=f"Model year, {MIN_YEAR} … next year."
    )
    manufacturer: Text = None
    model: Text = None
    condition: Annotated[str | None, _one_of(CONDITIONS), WithJsonSchema(_enum_schema(CONDITIONS))] = None
    cylinders: Annotated[str | None, _one_of(CYLINDERS), WithJsonSchema(_enum_schema(CYLINDERS))] = None
    fuel: Annotated[str | None, _one_of(FUELS), WithJsonSchema(_enum_schema(FUELS))] = None
    odometer: Annotated[float | None, _ranged(0, MAX_ODOMETER), WithJsonSchema(_number_schema(0, MAX_ODOMETER))] = (
        Field(None, description="Miles.")
    )
    title_status: Annotated[str | None, _one_of(TITLE_STATUSES), WithJsonSchema(_enum_schema(TITLE_STATUSES))] = None
    transmission: Annotated[str | None, _one_of(TRANSMISSIONS), WithJsonSchema(_enum_schema(TRANSMISSIONS))] = None
    drive: Annotated[str | None, _one_of(DRIVES), WithJsonSchema(_enum_schema(DRIVES))] = None
    size: Annotated[str | None, _one_of(SIZES), WithJsonSchema(_enum_schema(SIZES))] = None
    type: Annotated[str | None, _one_of(TYPES), WithJsonSchema(_enum_schema(TYPES))] = None
    paint_color: Annotated[str | None, _one_of(PAINT_COLORS), WithJsonSchema(_enum_schema(PAINT_COLORS))] = None
    state: Annotated[
        str | None,
        _one_of(US_STATES, "a two-letter US state code"),
        WithJsonSchema(_enum_schema(US_STATES)),
    ] = None
    lat: Annotated[float | None, _ranged(-90, 90), WithJsonSchema(_number_schema(-90, 90))] = None
    long: Annotated[float | None, _ranged(-180, 180), WithJsonSchema(_number_schema(-180, 180))] = None
    posting_date: Annotated[Moment | None, WithJsonSchema(_nullable(DATE_TIME_SCHEMA))] = Field(
        None, description="When the listing was posted: 1990 … now + 1 day, ISO 8601 with offset."
    )


FEATURE_FIELDS: Final = tuple(
    name for name in Listing.model_fields if name not in {"id", "event_id", "source", "event_time", "price"}
)


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


def _reason(problems: list[tuple[str, str]]) -> str:
    """The problems joined by "; ", at most ``MAX_REASON_BYTES`` (UTF-8) with the count of the rest."""
    parts: list[str] = []
    used = 0
    for shown, (field, message) in enumerate(problems):
        part = f"{field if len(field) <= 40 and not UNPRINTABLE.search(field) else _shown(field)}: {message}"
        rest = len(problems) - shown - 1
        tail = f"; and {rest} more problems" if rest else ""
        if used + len(part.encode()) + len(tail.encode()) + 2 > MAX_REASON_BYTES:
            return "; ".join(parts) + f"; and {len(problems) - shown} more problems"
        parts.append(part)
        used += len(part.encode()) + 2
    return "; ".join(parts)


def _duplicate_keys(text: str, data: dict[str, Any]) -> list[str]:
    """Keys given twice at the top level, found without parsing again in the common case.

    Every key is a string followed by ``:``; ``text.count('":')`` counts the keys written with no space
    before the colon (and ``\\":`` inside values, which only errs towards a closer look). When it equals
    the number of keys and no quote is followed by white space, no key can have been given twice."""
    spaced = '" ' in text or '"\n' in text or '"\t' in text or '"\r' in text
    if not spaced and text.count('":') == len(data):
        return []
    if len(DUPLICATE_KEYS_HINT.findall(text)) <= len(data):
        return []
    counts = Counter(key for key, _ in json.loads(text, object_pairs_hook=lambda pairs: pairs))
    return sorted(key for key, n in counts.items() if n > 1)


def nested_deeper(text: str, limit: int = MAX_NESTING) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels deep in JSON ``text`` (strings skipped).
    Cheap: with at most ``limit`` brackets in all (every listing that keeps the contract) nothing is walked."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in BRACKET_OR_STRING.finditer(text):
        found = match.group()
        if found == "[" or found == "{":
            depth += 1
            if depth > limit:
                return True
        elif found == "]" or found == "}":
            depth -= 1
    return False


def _check_nesting(text: str) -> None:
    if nested_deeper(text):
        raise InvalidListing(f"listing: expected a flat JSON object, got nesting deeper than {MAX_NESTING} levels")


def _decoded(raw: bytes | str) -> dict[str, Any]:
    if raw is None:
        raise InvalidListing("listing: expected a JSON object, got an empty message")
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidListing(f"listing: expected at most {MAX_EVENT_BYTES} bytes, got {len(raw)}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise InvalidListing(f"listing: expected UTF-8 text, got invalid bytes ({exc.reason})") from exc
    _check_nesting(text)
    try:
        data = orjson.loads(text)  # strict JSON (no NaN), 3-4x faster than the json module
    except ValueError as exc:
        raise InvalidListing(f"listing: expected a JSON object, got text that is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidListing(f"listing: expected a JSON object, got {type(data).__name__}")
    if len(data) > MAX_KEYS:
        raise InvalidListing(f"listing: expected at most {MAX_KEYS} keys, got {len(data):,}")
    duplicates = _duplicate_keys(text, data)
    if duplicates:
        raise InvalidListing(_reason([(key, "expected each key once, got it twice or more") for key in duplicates]))
    return data


def capped(reason: str) -> str:
    """A reason of any origin (a model error too) cut to ``MAX_REASON_BYTES`` of UTF-8."""
    data = reason.encode()
    if len(data) <= MAX_REASON_BYTES:
        return reason
    return data[: MAX_REASON_BYTES - 20].decode(errors="ignore") + f"… ({len(data):,} bytes)"


def parse_listing(raw: bytes | str) -> Listing:
    """Validate one raw Kafka value; raise ``InvalidListing`` naming what was expected and what arrived."""
    data = _decoded(raw)
    try:
        return Listing.model_validate(data)
    except ValidationError as exc:
        raise InvalidListing(_reason(field_messages(exc))) from exc


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

    model: str = Field("", description="The registered model's name; workers of another model ignore it.")
    version: int
    alias: str
    promoted_at: AwareDatetime
    reason: str

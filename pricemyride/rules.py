"""The listing's rules: what each field of a ``Listing`` accepts, declared once as a ``Rule`` that both
validates what arrives and says so in the JSON Schema (limits, patterns, the clock, the vocabularies).

Errors read ``expected what the rule wants, got what arrived``; text of any size is shown in at most ~60
characters (``shown``).
"""

from __future__ import annotations

import math
import re
import reprlib
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

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
MIN_YEAR: Final = 1900
MIN_DATE_YEAR: Final = 1990
FUTURE_SLACK: Final = timedelta(days=1)
MAX_ODOMETER: Final = 2_000_000
MAX_PRICE: Final = 5_000_000
MAX_FAIR_PRICE: Final = 10 * MAX_PRICE  # a model's price beyond this is no price (a record the monitor skips)


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
US_STATES: Final = frozenset((
    "ak", "al", "ar", "az", "ca", "co", "ct", "dc", "de", "fl", "ga", "hi", "ia", "id", "il", "in", "ks",
    "ky", "la", "ma", "md", "me", "mi", "mn", "mo", "ms", "mt", "nc", "nd", "ne", "nh", "nj", "nm", "nv",
    "ny", "oh", "ok", "or", "pa", "ri", "sc", "sd", "tn", "tx", "ut", "va", "vt", "wa", "wi", "wv", "wy",
))  # fmt: skip


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: typing hashes Annotated's metadata
class Rule:
    """One field's rule, declared once: ``check`` runs on what arrives, before pydantic's own type check
    (returning the value to keep, or raising ``ValueError("expected …, got …")``), and ``schema`` is what the
    exported JSON Schema says of the field. Use it as ``Annotated[type, rule]``."""

    check: Callable[[Any], Any]
    schema: dict[str, Any]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return dict(self.schema)


KINDS: Final = {list: "items", dict: "keys"}
SHORT_REPR: Final = reprlib.Repr()  # Python 3.11's takes no arguments
SHORT_REPR.maxlevel, SHORT_REPR.maxlist, SHORT_REPR.maxdict, SHORT_REPR.maxstring = 3, 4, 4, 40
MEMO_SIZE: Final = 16_384


def shown(value: Any) -> str:
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


def _text(value: Any, max_len: int = MAX_TEXT) -> str | None:
    """Printable text of at most ``max_len`` characters; blank text means "not given" (None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {shown(value)}")
    if len(value) > max_len:
        raise ValueError(f"expected at most {max_len} characters, got {len(value)}")
    if UNPRINTABLE.search(value):
        raise ValueError(f"expected printable text (no control or format characters), got {shown(value)}")
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
        raise ValueError(f"expected a number, got {shown(value)}")
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {shown(value)}")
    return number


def ranged(low: float, high: float) -> Rule:
    """A number from ``low`` to ``high``, or null."""

    def check(value: Any) -> float | None:
        number = _number(value)
        if number is not None and not low <= number <= high:
            raise ValueError(f"expected {low:,.0f} … {high:,.0f}, got {number:g}")
        return number

    return Rule(check, _number_schema(low, high))


def _year(value: Any) -> int | None:
    number = _number(value)
    if number is None:
        return None
    last = CLOCK.last_year()
    if number != int(number) or not MIN_YEAR <= number <= last:
        raise ValueError(f"expected a whole year {MIN_YEAR} … {last}, got {number:g}")
    return int(number)


def one_of(choices: Collection[str], described: str = "") -> Rule:
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
            raise ValueError(f"expected {listed} (any case) or null; got {shown(value)}")
        return lowered

    return Rule(check, _enum_schema(choices))


@_remembered
def _lower_text(value: Any) -> str | None:
    text = _text(value)
    return text.lower() if text is not None else None


def _listing_id(value: Any) -> str:
    if type(value) is int or (type(value) is float and value.is_integer()):
        if not 0 <= value <= MAX_ID_NUMBER:
            raise ValueError(f"expected a listing id 0 … 2**63-1 or text, got {shown(value)}")
        return str(int(value))
    text = _text(value, max_len=MAX_ID)
    if text is None:
        raise ValueError(f"expected a non-empty listing id (text or a whole number), got {shown(value)}")
    return text


@_remembered
def _source(value: Any) -> str:
    text = _text(value)
    if text is None:
        raise ValueError(f"expected a non-blank source name, got {shown(value)}")
    return text


def _date_time(value: Any) -> datetime:
    """ISO 8601 text with a UTC offset, in 1990 or later as written and at most one day ahead of this clock,
    as a datetime (built here once: pydantic takes it as it is)."""
    if isinstance(value, datetime):  # built in code (producers, tests), not read from JSON
        return _in_range(value)
    if not isinstance(value, str) or not DATE_TIME.fullmatch(value):
        raise ValueError(f"expected an ISO 8601 date-time with a UTC offset, got {shown(value)}")
    try:
        moment = datetime.fromisoformat(value.replace("t", "T").replace("z", "Z"))
    except ValueError:
        raise ValueError(f"expected a date-time that exists in the calendar, got {shown(value)}") from None
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
    raise ValueError(f"expected a UUID like 123e4567-e89b-12d3-a456-426614174000, got {shown(value)}")


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
TEXT: Final = Rule(_lower_text, TEXT_SCHEMA)  # free text, kept lower-case; blank means not given
LISTING_ID: Final = Rule(_listing_id, ID_SCHEMA)
EVENT_ID: Final = Rule(_event_id, UUID_SCHEMA)
SOURCE: Final = Rule(_source, SOURCE_SCHEMA)
MOMENT: Final = Rule(_date_time, DATE_TIME_SCHEMA)
YEAR: Final = Rule(_year, YEAR_SCHEMA)

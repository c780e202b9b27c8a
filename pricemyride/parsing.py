"""The parser: a raw Kafka value becomes a validated ``Listing`` here and nowhere else, or an ``InvalidListing``
whose reason names each field, what was expected and what arrived (at most ``MAX_REASON_BYTES``).

Before pydantic sees it, the raw event is bounded: its size, its nesting, its number of keys, and no key
given twice — the checks cheap on a good listing and bounded on a hostile one.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Final

import orjson
from pydantic import ValidationError

from pricemyride.errors import InvalidListing
from pricemyride.listing import Listing
from pricemyride.rules import UNPRINTABLE, shown

MAX_EVENT_BYTES: Final = 64 * 1024
MAX_NESTING: Final = 8  # a listing is one flat object; deeper JSON is refused before it is decoded
MAX_KEYS: Final = 64  # a listing has 25 fields; an object of thousands of keys is refused by its count
MAX_REASON_BYTES: Final = 1024
DUPLICATE_KEYS_HINT: Final = re.compile(r'"\s*:')
# A JSON string (skipped whole) or one bracket: what the nesting check walks when brackets are many.
BRACKET_OR_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def field_messages(error: ValidationError) -> list[tuple[str, str]]:
    """(field, message) per problem, in the words the stream's dead letters use."""
    parts = []
    for item in error.errors(include_url=False):
        field = ".".join(str(p) for p in item["loc"]) or "listing"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "required field is missing"
        elif item["type"] == "extra_forbidden":
            message = f"unknown field, got {shown(item['input'])}"
        elif item["type"] not in {"value_error"}:
            message = f"{message}, got {shown(item['input'])}"
        parts.append((field, message))
    return parts


def _reason(problems: list[tuple[str, str]]) -> str:
    """The problems joined by "; ", at most ``MAX_REASON_BYTES`` (UTF-8) with the count of the rest."""
    parts: list[str] = []
    used = 0
    for done, (field, message) in enumerate(problems):
        part = f"{field if len(field) <= 40 and not UNPRINTABLE.search(field) else shown(field)}: {message}"
        rest = len(problems) - done - 1
        tail = f"; and {rest} more problems" if rest else ""
        if used + len(part.encode()) + len(tail.encode()) + 2 > MAX_REASON_BYTES:
            return "; ".join(parts) + f"; and {len(problems) - done} more problems"
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


def decode_object(raw: bytes | str) -> dict[str, Any]:
    """One JSON object within the stream's limits (size, UTF-8, nesting, key count, keys once), or
    ``InvalidListing`` naming what was expected and what arrived."""
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
    data = decode_object(raw)
    try:
        return Listing.model_validate(data)
    except ValidationError as exc:
        raise InvalidListing(_reason(field_messages(exc))) from exc

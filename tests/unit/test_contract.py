"""The exported JSON Schema and ``parse_listing`` are one contract: they accept and refuse the same events.

Validated with the ``jsonschema`` library (draft 2020-12, with its format checker). Hypothesis draws events
field by field from valid, edge and hostile values; for each the schema's verdict and the parser's must
agree. The rules the schema cannot state — anything relative to the clock (``year`` up to next year,
dates up to now + 1 day), calendar validity of dates, duplicate keys, the 64 KiB size — are tested
directly below instead.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from pricemyride.errors import InvalidListing
from pricemyride.listing import listing_json_schema
from pricemyride.parsing import MAX_KEYS, MAX_NESTING, MAX_REASON_BYTES, parse_listing
from pricemyride.rules import (
    CONDITIONS,
    CYLINDERS,
    DRIVES,
    FORBIDDEN_CHARS,
    FUELS,
    PAINT_COLORS,
    SIZES,
    TITLE_STATUSES,
    TRANSMISSIONS,
    TYPES,
    US_STATES,
)

VALIDATOR = Draft202012Validator(listing_json_schema(), format_checker=FormatChecker())
NOW = datetime.now(UTC)
HOSTILE_CHARS = ["\x7f", "\x85", "\u202e", "\u200b", "\u2028", "\u2029", "\ufeff", "\x00", "\ufffd", "\U000e0001"]


def schema_accepts(event: Any) -> bool:
    return VALIDATOR.is_valid(event)


def parser_accepts(event: Any) -> bool:
    try:
        parse_listing(json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    except InvalidListing:
        return False
    return True


# --- strategies: each field's values, valid or not ------------------------------------------------------

texts = st.one_of(
    st.text(max_size=210),
    st.text(alphabet=st.sampled_from(["a", " ", "é", *HOSTILE_CHARS]), max_size=8),
    st.sampled_from(["", " ", "\u00a0", "ford", "Ford ", "x" * 200, "x" * 201]),
)
numbers = st.one_of(
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -5, 1e308, 5_000_000, 5_000_001, 2_000_000, 2_000_000.5, 90, 91, -180.5]),
)
wrong_types = st.one_of(st.booleans(), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(), st.none()))
# Calendar-valid moments 1900 … now + 1 day (later ones are the clock's rule, tested apart), as ISO text.
moments = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001 - naive on purpose: the offset is drawn apart
    max_value=(NOW + timedelta(hours=20)).replace(tzinfo=None),
)
offsets = st.sampled_from(["+00:00", "Z", "-05:00", "-0500", "+0530", "", "+24:00", " UTC"])
date_texts = st.builds(lambda moment, offset: moment.isoformat(timespec="seconds") + offset, moments, offsets)
ids = st.one_of(st.integers(-5, 2**64), texts, st.text(min_size=60, max_size=70), st.just(12.0), st.just(12.5))
years = st.one_of(st.integers(1800, NOW.year + 1), st.sampled_from([2015.0, 2012.5, "2015"]))


def field_value(kind: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(kind, st.none(), wrong_types)


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": ids,
    "event_id": st.one_of(st.uuids().map(str), st.uuids().map(lambda u: u.hex), texts),
    "source": texts,
    "event_time": field_value(date_texts),
    "posting_date": field_value(date_texts),
    "price": field_value(numbers),
    "year": field_value(years),
    "odometer": field_value(numbers),
    "lat": field_value(numbers),
    "long": field_value(numbers),
    "model": field_value(texts),
    "region": field_value(texts),
    "condition": field_value(
        st.one_of(
            st.sampled_from([*CONDITIONS, "Excellent", "LIKE NEW", "banana", " good ", "like\u00a0new", "  "]),
            st.builds(lambda c, w: w + c + w, st.sampled_from(CONDITIONS), st.sampled_from(["", " ", "\n", "\u3000"])),
            texts,
        )
    ),
    "fuel": field_value(st.sampled_from([*FUELS, "GAS", "steam"])),
    "title_status": field_value(st.sampled_from([*TITLE_STATUSES, "Parts Only", "stolen"])),
    "cylinders": field_value(st.sampled_from([*CYLINDERS, "6 CYLINDERS", "6"])),
    "transmission": field_value(st.sampled_from([*TRANSMISSIONS, "AUTOMATIC", "cvt"])),
    "drive": field_value(st.sampled_from([*DRIVES, "4WD", "awd"])),
    "size": field_value(st.sampled_from([*SIZES, "Full-Size", "huge"])),
    "type": field_value(st.sampled_from([*TYPES, "SUV", "tank"])),
    "paint_color": field_value(st.sampled_from([*PAINT_COLORS, "Red", "teal"])),
    "manufacturer": field_value(texts),
    "state": field_value(st.sampled_from([*sorted(US_STATES)[:5], "TX", "zz", "texas", "\u212ay", "Ky", "ky\n"])),
    "seats": st.integers(0, 9),  # not a field: refused by both
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=len(FIELDS)))
    event = {name: draw(FIELDS[name]) for name in sorted(chosen) if name != "seats" or draw(st.booleans())}
    if draw(st.booleans()):
        event["id"] = draw(st.sampled_from(["abc-1", 7184791621]))
    return event


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_schema_and_parser_agree_on_generated_and_hostile_events(event: dict[str, Any]) -> None:
    assert schema_accepts(event) == parser_accepts(event), event


@pytest.mark.parametrize(
    "event",
    [
        {"id": "a", "year": 1850},
        {"id": "a", "odometer": -5},
        {"id": "a", "lat": 91},
        {"id": "a", "condition": "banana"},
        {"id": "x" * 65},
        {"id": "a", "year": "2015"},
        {"id": "a", "posting_date": 0},
        {"id": "a", "price": 1e12},
        {"id": "a", "posting_date": "0001-01-01T00:00:00+00:00"},
        {"id": "a\u202eb"},
        {"id": "a", "model": "x\u2028y"},
        {"id": True},
        {"id": "a", "event_id": "not-a-uuid"},
    ],
)
def test_the_issues_counterexamples_are_refused_by_both(event: dict[str, Any]) -> None:
    assert not schema_accepts(event)
    assert not parser_accepts(event)


@pytest.mark.parametrize(
    "event",
    [
        {"id": 12345},
        {"id": "7184791621", "year": 2012.0, "posting_date": "2021-04-19T11:46:44-0500", "price": 0},
        {"id": "a", "source": "site-1", "event_time": NOW.isoformat(), "state": "tx", "fuel": "gas"},
        {"id": "a", "price": 5_000_000, "odometer": 2_000_000, "lat": -90, "long": 180},
    ],
)
def test_good_events_are_accepted_by_both(event: dict[str, Any]) -> None:
    assert schema_accepts(event)
    assert parser_accepts(event)


def test_the_forbidden_character_class_is_exactly_cc_cf_zl_zp_surrogates_and_fffd() -> None:
    import re

    pattern = re.compile(f"[{FORBIDDEN_CHARS}]")
    wanted = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    wrong = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if bool(pattern.match(chr(code))) != (unicodedata.category(chr(code)) in wanted or code == 0xFFFD)
    ]
    assert wrong == [], f"FORBIDDEN_CHARS is out of date with unicodedata {unicodedata.unidata_version}"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("year", NOW.year + 2, f"year: expected a whole year 1900 … {NOW.year + 1}, got {NOW.year + 2}"),
        ("event_time", "9999-01-01T00:00:00+00:00", "event_time: expected a date-time no later than"),
        ("posting_date", (NOW + timedelta(days=2)).isoformat(), "posting_date: expected a date-time no later than"),
        ("posting_date", "2021-02-30T10:00:00+00:00", "posting_date: expected a date-time that exists in the calendar"),
    ],
    ids=["next-year-but-one", "year-9999", "two-days-ahead", "february-30"],  # stable ids: no clock in a test's name
)
def test_clock_and_calendar_rules_the_schema_cannot_state(field: str, value: object, expected: str) -> None:
    with pytest.raises(InvalidListing) as caught:
        parse_listing(json.dumps({"id": "a", field: value}))
    assert str(caught.value).startswith(expected)


def test_duplicate_keys_are_refused_not_last_wins() -> None:
    with pytest.raises(InvalidListing) as caught:
        parse_listing(b'{"id": "a", "price": 1000, "price" : 99000}')
    assert str(caught.value) == "price: expected each key once, got it twice or more"


def test_a_key_like_text_inside_a_value_is_not_a_duplicate() -> None:
    assert parse_listing(b'{"id": "a", "model": "says \\"price\\": 5"}').model == 'says "price": 5'


def test_a_59_kb_event_with_6000_unknown_keys_is_refused_by_its_key_count() -> None:
    event = {"id": "a"} | {f"k{i}": 1 for i in range(6_000)}
    raw = json.dumps(event, separators=(",", ":")).encode()
    assert 40_000 < len(raw) < 64 * 1024
    with pytest.raises(InvalidListing) as caught:
        parse_listing(raw)
    assert str(caught.value) == f"listing: expected at most {MAX_KEYS} keys, got 6,001"


def test_a_few_unknown_keys_are_each_named_within_1_kb() -> None:
    event = {"id": "a"} | {f"unknown_key_number_{i}": 1 for i in range(MAX_KEYS - 1)}
    with pytest.raises(InvalidListing) as caught:
        parse_listing(json.dumps(event))
    reason = str(caught.value)
    assert len(reason.encode()) <= MAX_REASON_BYTES
    shown = reason.count("unknown field")
    assert shown > 5
    assert reason.endswith(f"; and {MAX_KEYS - 1 - shown} more problems")


def test_a_hostile_unknown_key_is_shown_escaped_in_the_reason() -> None:
    with pytest.raises(InvalidListing) as caught:
        parse_listing(json.dumps({"id": "a", "evil\u202ekey\n": 1}))
    reason = str(caught.value)
    assert "\u202e" not in reason
    assert "\n" not in reason
    assert reason == "'evil\\u202ekey\\n': unknown field, got 1"


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 1_000, 60_000])
def test_deep_nesting_is_refused_before_decoding_with_a_bounded_reason(depth: int) -> None:
    raw = '{"id":"p","model":' + "[" * depth + "]" * depth + "}"
    with pytest.raises(InvalidListing) as caught:
        parse_listing(raw.encode()[: 64 * 1024])
    assert str(caught.value) == f"listing: expected a flat JSON object, got nesting deeper than {MAX_NESTING} levels"


def test_brackets_inside_text_are_not_nesting() -> None:
    listing = parse_listing(json.dumps({"id": "p", "model": "[[[[[[[[[[{{{{{{{{{ f-150 ]]]]", "region": '"[[["'}))
    assert listing.model == "[[[[[[[[[[{{{{{{{{{ f-150 ]]]]"


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("manufacturer", [[1]] * 3, "got [[1], [1], [1]]"),
        ("manufacturer", [["x" * 30]] * 20, "got an array of 20 items"),
        ("model", [[[[[[1]]]]]], "got [[[[...]]]]"),
        ("model", {f"key{i}": {"b": 1} for i in range(9)}, "got an object of 9 keys"),
        ("condition", "x" * 100, "'" + "x" * 36 + "...' (100 characters)"),
    ],
)
def test_a_nested_or_long_value_is_described_not_printed(field: str, value: object, shown: str) -> None:
    with pytest.raises(InvalidListing) as caught:
        parse_listing(json.dumps({"id": "p", field: value}))
    assert str(caught.value).startswith(f"{field}: expected ")
    assert str(caught.value).endswith(shown)

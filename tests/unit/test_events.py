"""The event contract: bad input is refused with a reason that names what was expected and what arrived."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pricemyride.errors import InvalidListing
from pricemyride.listing import Listing, listing_json_schema
from pricemyride.parsing import MAX_EVENT_BYTES, parse_listing

NEXT_YEAR = datetime.now(UTC).year + 1


def event(**fields: object) -> bytes:
    return json.dumps({"id": "abc-1"} | fields).encode()


ONE_MB = event(model="x" * 1_048_576)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(json.dumps({"year": 2010}).encode(), "id: required field is missing", id="missing id"),
        pytest.param(
            event(id=""), "id: expected a non-empty listing id (text or a whole number), got ''", id="empty id"
        ),
        pytest.param(event(year=1850), f"year: expected a whole year 1900 … {NEXT_YEAR}, got 1850", id="year 1850"),
        pytest.param(event(year=2012.5), f"year: expected a whole year 1900 … {NEXT_YEAR}, got 2012.5", id="year frac"),
        pytest.param(event(odometer=-5), "odometer: expected 0 … 2,000,000, got -5", id="odometer -5"),
        pytest.param(event(price="abc"), "price: expected a number, got 'abc'", id="price abc"),
        pytest.param(event(price=-1), "price: expected 0 … 5,000,000, got -1", id="negative price"),
        pytest.param(event(price=True), "price: expected a number, got True", id="price bool"),
        pytest.param(event(price="NaN"), "price: expected a number, got 'NaN'", id="price NaN as text"),
        pytest.param(
            b'{"id": "a", "price": NaN}',
            "listing: expected a JSON object, got text that is not JSON (unexpected character, expected a JSON value: "
            "line 1 column 22 (char 21))",
            id="NaN is not JSON",
        ),
        pytest.param(
            event(fuel="steam"),
            "fuel: expected one of diesel, electric, gas, hybrid, other (any case) or null; got 'steam'",
            id="fuel",
        ),
        pytest.param(event(lat=91), "lat: expected -90 … 90, got 91", id="lat"),
        pytest.param(
            event(state="zz"), "state: expected a two-letter US state code (any case) or null; got 'zz'", id="state"
        ),
        pytest.param(
            event(model="abc\u0000def"),
            "model: expected printable text (no control or format characters), got 'abc\\x00def'",
            id="unicode junk",
        ),
        pytest.param(event(model="x" * 201), "model: expected at most 200 characters, got 201", id="long string"),
        pytest.param(ONE_MB, f"listing: expected at most {MAX_EVENT_BYTES} bytes, got {len(ONE_MB)}", id="1 MB"),
        pytest.param(event(seats=5), "seats: unknown field, got 5", id="extra field"),
        pytest.param(event(manufacturer=["ford"]), "manufacturer: expected text, got ['ford']", id="list as text"),
        pytest.param(
            event(posting_date="2021-04-19T11:46:44"),
            "posting_date: expected an ISO 8601 date-time with a UTC offset, got '2021-04-19T11:46:44'",
            id="naive date",
        ),
        pytest.param(
            b"not json at all",
            "listing: expected a JSON object, got text that is not JSON (invalid literal, expected 'null': "
            "line 1 column 1 (char 0))",
            id="not JSON",
        ),
        pytest.param(
            b'{"id": "\xff"}',
            "listing: expected UTF-8 text, got invalid bytes (invalid start byte)",
            id="invalid utf-8",
        ),
        pytest.param(b"[1, 2]", "listing: expected a JSON object, got list", id="array"),
        pytest.param(None, "listing: expected a JSON object, got an empty message", id="tombstone"),
    ],
)
def test_bad_input_is_refused_with_its_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidListing) as caught:
        parse_listing(raw)  # type: ignore[arg-type]
    assert str(caught.value) == reason


def test_several_problems_are_all_named() -> None:
    with pytest.raises(InvalidListing) as caught:
        parse_listing(event(year=1850, odometer=-5))
    assert str(caught.value).count(";") == 1


def test_a_raw_craigslist_row_is_normalised() -> None:
    listing = parse_listing(
        event(
            id=7184791621,
            year=2012.0,
            manufacturer=" Ford ",
            fuel="GAS",
            type=" SUV",
            state="TX",
            posting_date="2021-04-19T11:46:44-0500",
            price=0,
        )
    )
    assert (listing.id, listing.year, listing.manufacturer, listing.fuel, listing.type, listing.state) == (
        "7184791621",
        2012,
        "ford",
        "gas",
        "suv",
        "tx",
    )
    assert listing.price == 0, "a $0 anchor price is a valid event (scored, never trained on)"
    assert listing.posting_date is not None
    assert listing.posting_date.utcoffset() is not None


def test_only_an_id_is_required_and_metadata_is_filled_in() -> None:
    listing = parse_listing(b'{"id": "x"}')
    assert listing.event_time.tzinfo is not None
    assert listing.source == "unknown"
    assert listing.year is None
    assert listing.price is None


def test_json_schema_describes_the_contract() -> None:
    schema = listing_json_schema()
    assert schema["required"] == ["id"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(Listing.model_fields)

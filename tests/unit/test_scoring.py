"""Scoring a micro-batch with a stub model: valid listings priced, bad ones dead-lettered, nothing lost."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pricemyride.errors import InvalidListing
from pricemyride.events import Prediction
from pricemyride.listing import Listing
from pricemyride.parsing import parse_listing
from pricemyride.topics import SiteTopics, site_name
from pricing.path import listing_json
from stream_workers import scoring
from stream_workers.scoring import RawMessage, dlq_headers, score_batch, validate
from training.features import records_of


class MilesModel:
    """Price falls with miles, range ±20%; fails on a car named 'boom'."""

    def price_ranges(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if any(r["model"] == "boom" for r in records):
            raise ValueError("boom")
        fair = 30_000 - np.array([r["odometer"] or 0 for r in records], dtype="float64") / 10
        return np.column_stack([fair, 0.8 * fair, 1.2 * fair])


def message(offset: int, value: bytes | None) -> RawMessage:
    return RawMessage("listings", 2, offset, f"k{offset}".encode(), value)


def listing(listing_id: str, **fields: object) -> bytes:
    return json.dumps({"id": listing_id} | fields).encode()


def test_a_batch_is_split_into_predictions_and_dead_letters() -> None:
    batch = [message(0, listing("a", odometer=10_000)), message(1, b"nope"), message(2, listing("b", year=1850))]
    scored = score_batch(MilesModel(), 3, batch)
    assert [(p.listing_id, p.predicted_price, p.model_version) for p in scored.predictions] == [("a", 29_000.0, 3)]
    assert [(d.offset, d.payload) for d in scored.dead_letters] == [(1, b"nope"), (2, batch[2].value)]
    assert scored.dead_letters[1].reason.startswith("year: expected a whole year")


def test_the_listing_that_breaks_the_model_is_isolated() -> None:
    batch = [message(0, listing("a", model="civic")), message(1, listing("b", model="boom"))]
    scored = score_batch(MilesModel(), 1, batch)
    assert [p.listing_id for p in scored.predictions] == ["a"]
    assert [(d.offset, d.reason) for d in scored.dead_letters] == [
        (1, "model: could not price this listing (ValueError: boom)")
    ]


@pytest.mark.parametrize("bad_price", [0.0, -5.0, float("inf")])
def test_non_positive_or_infinite_prices_are_not_stored(bad_price: float) -> None:
    class Fixed:
        def price_ranges(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
            return np.full((len(records), 3), bad_price)

    scored = score_batch(Fixed(), 1, [message(0, listing("a"))])
    assert scored.predictions == []
    assert len(scored.dead_letters) == 1


def test_a_frame_is_read_as_the_stream_delivers_listings() -> None:
    frame = pd.DataFrame({"year": ["2015", None], "odometer": [5, "n/a"], "manufacturer": ["Ford", None],
                          "posting_date": ["2021-04-19T11:46:44-0500", "not a date"]})  # fmt: skip
    first, second = records_of(frame)
    assert first["year"] == 2015.0
    assert first["posting_date"] == datetime(2021, 4, 19, 16, 46, 44, tzinfo=UTC)
    assert first["manufacturer"] == "Ford"
    assert math.isnan(second["year"])
    assert math.isnan(second["odometer"])
    assert second["posting_date"] is None


def test_prediction_rows_carry_the_event_and_the_listing() -> None:
    scored = score_batch(MilesModel(), 4, [message(0, listing("a", price=12_000, manufacturer="Ford"))])
    (row,) = scored.rows
    assert (row.listing_id, row.model_version, row.asking_price) == ("a", 4, 12_000.0)
    assert (row.predicted_price, row.price_low, row.price_high) == (30_000.0, 24_000.0, 36_000.0)
    assert row.deal_rating == "great", "asking 12k is below the range 24k–36k"
    assert json.loads(row.listing)["manufacturer"] == "ford"
    assert row.event_time.tzinfo is not None


def test_dead_letter_headers_name_the_reason_and_the_coordinate() -> None:
    _, (dead,) = validate([message(7, b"{}")], pd.Timestamp.now("UTC").to_pydatetime())
    headers = dict(dlq_headers(dead))
    assert headers["dlq.reason"] == b"id: required field is missing"
    assert (headers["dlq.topic"], headers["dlq.partition"], headers["dlq.offset"]) == (b"listings", b"2", b"7")


def test_the_published_json_is_the_prediction_contract_and_goes_to_the_listings_partition() -> None:
    value = listing("a", price=12_000, manufacturer=" Ford ", posting_date="2021-04-01T10:00:00-05:00", lat=45.5)
    scored = score_batch(MilesModel(), 4, [message(0, value)])
    (published,) = scored.published
    (row,) = scored.rows
    expected = Prediction(
        listing_id=row.listing_id, model_version=4, predicted_price=row.predicted_price, price_low=row.price_low,
        price_high=row.price_high, deal_rating=row.deal_rating, asking_price=row.asking_price,  # type: ignore[arg-type]
        event_time=row.event_time, scored_at=row.scored_at, listing=Listing.model_validate_json(row.listing),
    )  # fmt: skip
    assert json.loads(published.value) == json.loads(expected.model_dump_json())
    assert (published.partition, published.key) == (2, b"a")


def test_remembered_text_checks_answer_as_the_first_time_and_still_reject() -> None:
    first = [parse_listing(listing(str(i), manufacturer="FORD ", region=" Austin", state="ca")) for i in range(3)]
    assert {(x.manufacturer, x.region, x.state) for x in first} == {("ford", "austin", "ca")}
    for _ in range(2):
        with pytest.raises(InvalidListing, match="condition: expected one of"):
            parse_listing(listing("x", condition="mint"))


@pytest.mark.parametrize(
    "fields",
    [{}, {"price": 12_000, "posting_date": "2021-04-01T10:00:00.5-05:00", "lat": 45.0, "model": "F-150 XLT"},
     {"event_time": "2026-01-02T03:04:05Z", "year": 2015, "odometer": 0, "state": "ca", "source": "site ü"}],
)  # fmt: skip
def test_the_stored_listing_json_is_pydantics_json(fields: dict[str, object]) -> None:
    parsed = parse_listing(listing("a", **fields))
    assert listing_json(parsed) == parsed.model_dump_json()


def test_the_2_kb_poison_listing_is_a_dead_letter_and_the_batch_is_stored() -> None:
    poison = b'{"id":"poison-1","year":2015,"manufacturer":"ford","model":' + b"[" * 1_000 + b"]" * 1_000 + b"}"
    batch = [message(0, listing("a")), message(1, poison), message(2, listing("b"))]
    scored = score_batch(MilesModel(), 1, batch)
    assert [p.listing_id for p in scored.predictions] == ["a", "b"]
    assert [(d.offset, d.reason) for d in scored.dead_letters] == [
        (1, "listing: expected a flat JSON object, got nesting deeper than 8 levels")
    ]


def test_an_unexpected_error_in_validation_is_a_dead_letter_naming_its_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    real = scoring.parse_listing

    def fragile(raw: bytes | None) -> Listing:
        if raw is not None and b"fragile" in raw:
            raise RecursionError("maximum recursion depth exceeded " + "x" * 5_000)
        return real(raw)

    monkeypatch.setattr(scoring, "parse_listing", fragile)
    scored = score_batch(MilesModel(), 1, [message(0, listing("a")), message(1, listing("fragile")), message(2, None)])
    assert [p.listing_id for p in scored.predictions] == ["a"]
    assert [(d.offset, d.reason) for d in scored.dead_letters] == [
        (1, "internal error: RecursionError"),
        (2, "listing: expected a JSON object, got an empty message"),
    ]


def test_a_failure_outside_the_model_call_costs_only_its_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = scoring.price_listings

    def fragile(model: Any, version: int, listings: Sequence[Listing], now: datetime) -> list[Any]:
        if any(x.model == "zap" for x in listings):
            raise KeyError("deal ratings")
        return real(model, version, listings, now)

    monkeypatch.setattr(scoring, "price_listings", fragile)
    batch = [message(0, listing("a")), message(1, listing("z", model="zap")), message(2, listing("b"))]
    scored = score_batch(MilesModel(), 1, batch)
    assert [p.listing_id for p in scored.predictions] == ["a", "b"]
    assert [(d.offset, d.reason) for d in scored.dead_letters] == [(1, "internal error: KeyError")]


def test_two_sites_with_the_same_listing_id_get_two_rows() -> None:
    batch = [message(0, listing("42", source="site-a")), message(1, listing("42", source="site-b"))]
    rows = score_batch(MilesModel(), 1, batch).rows
    assert [(r.source, r.listing_id) for r in rows] == [("site-a", "42"), ("site-b", "42")]


SITES = SiteTopics("listings", "price-predictions", "listings.dlq")


@pytest.mark.parametrize(
    ("topic", "site", "answered_on"),
    [("listings", None, "price-predictions"), ("listings.site-a", "site-a", "price-predictions.site-a"),
     ("listings.dlq", None, "price-predictions"), ("listings.Site-A", None, "price-predictions"),
     ("listings.a.b", None, "price-predictions"), ("listingsx", None, "price-predictions")],
)  # fmt: skip
def test_a_topic_names_its_site_and_where_its_valuations_go(topic: str, site: str | None, answered_on: str) -> None:
    assert SITES.site_of(topic) == site
    assert SITES.predictions_for(topic) == answered_on
    assert bool(re.match(SITES.listings_pattern(), topic)) is (topic == "listings" or site is not None)


def test_a_listing_on_a_sites_topic_is_that_sites_and_may_not_claim_another() -> None:
    batch = [RawMessage("listings.site-a", 0, 0, b"a", listing("a")),
             RawMessage("listings.site-a", 0, 1, b"b", listing("b", source="site-a")),
             RawMessage("listings.site-a", 0, 2, b"c", listing("c", source="site-b")),
             RawMessage("listings", 0, 0, b"d", listing("d", source="site-b"))]  # fmt: skip
    scored = score_batch(MilesModel(), 1, batch, SITES)
    assert [(p.listing_id, p.source) for p in scored.predictions] == [("a", "site-a"), ("b", "site-a"), ("d", "site-b")]
    assert [p.topic for p in scored.published] == ["listings.site-a", "listings.site-a", "listings"]
    (refused,) = scored.dead_letters
    assert refused.reason == "source: expected 'site-a' (the site that owns listings.site-a) or none, got 'site-b'"


@pytest.mark.parametrize("name", ["", "dlq", "Site", "a" * 41, "a.b", "-a", "a b"])
def test_a_site_name_that_cannot_name_a_topic_is_refused_with_what_was_expected(name: str) -> None:
    with pytest.raises(ValueError, match="site name: expected 1-40 lower-case letters"):
        site_name(name)

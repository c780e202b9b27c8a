"""The dashboard's pure parts: form → listing, factors, table rows."""

from __future__ import annotations

import html

from dashboard.figures import dead_letter_rows, event_rows, reasons_figure, version_counts_figure
from dashboard.valuation import FORM_ID, form_listing, listing_from_form
from pricemyride.listing import Listing
from pricing.explain import top_factors


def test_blank_form_fields_are_not_given() -> None:
    listing = listing_from_form({"manufacturer": "Toyota", "model": "  ", "year": None, "price": 9000})
    assert isinstance(listing, Listing)
    assert (listing.id, listing.manufacturer, listing.model, listing.year) == (FORM_ID, "toyota", None, None)


def test_invalid_fields_get_the_streams_message_each() -> None:
    errors = listing_from_form({"year": 1850, "odometer": -5, "fuel": "steam", "state": "zz"})
    assert isinstance(errors, dict)
    assert set(errors) == {"year", "odometer", "fuel", "state"}
    assert errors["year"].startswith("expected a whole year 1900")
    assert errors["year"].endswith("got 1850")
    assert "got 'zz'" in errors["state"]


def test_a_picked_date_becomes_an_aware_posting_time() -> None:
    assert form_listing({"posting_date": "2021-05-04"})["posting_date"] == "2021-05-04T00:00:00+00:00"
    listing = listing_from_form(form_listing({"posting_date": "2021-05-04"}))
    assert isinstance(listing, Listing)
    assert listing.posting_date is not None
    assert listing.posting_date.utcoffset() is not None


def test_top_factors_rank_by_size_either_way_and_skip_the_bias() -> None:
    factors = top_factors({"bias": 9.9, "age": -0.4, "odometer": 0.1, "manufacturer": 0.3, "fuel": 0.0}, count=3)
    assert [f.feature for f in factors] == ["age", "manufacturer", "odometer"]
    assert round(factors[0].percent) == -33  # exp(-0.4) - 1
    assert factors[0].label == "age (year vs. posting date)"


def test_dead_letter_payload_preview_says_when_it_was_cut() -> None:
    row = {"failed_at": None, "topic": "listings", "partition": 1, "offset": 7, "key": None, "reason": "r",
           "payload": b"\xff{abc", "size": 5000}  # fmt: skip
    (shown,) = dead_letter_rows([row])
    assert shown["where"] == "listings[1]@7"
    assert shown["payload"] == "\ufffd{abc… (5,000 bytes)"
    assert shown["key"] == "—"


def test_version_counts_chart_has_one_bar_per_version() -> None:
    figure = version_counts_figure({1: 90, 2: 30})
    assert list(figure.data[0].x) == ["v1", "v2"]
    assert list(figure.data[0].y) == [90, 30]


def test_a_senders_json_key_is_drawn_as_text_not_markup() -> None:
    hostile = '<a href="https://evil.example">click</a>'
    figure = reasons_figure([{"field": hostile, "events": 3}])
    label = figure.data[0].y[0]
    assert "<a" not in label
    assert html.unescape(label) == hostile  # Plotly shows the entities as the characters they stand for


def test_model_events_are_named_by_the_decision_they_record() -> None:
    """With the metrics each writer records: the offline gate (none), the live gate (role, outcome, ``live``),
    a rollback (the watch's role), a worker's drop (none)."""

    def event(kind: str, role: str | None = None, outcome: str | None = None, live: bool = False) -> dict[str, object]:
        return {"at": None, "kind": kind, "version": 2, "champion": 1, "reason": "r", "role": role,
                "outcome": outcome, "live": live}  # fmt: skip

    events = [
        event("shadowed", "challenger"), event("shadow_ended", "challenger", "promoted", True),
        event("promoted", "challenger", live=True), event("shadowed", "watch"),
        event("shadow_ended", "watch", "rolled_back", True), event("rolled_back", "watch", live=True),
        event("promoted", "watch", live=True), event("shadow_ended", "watch", "kept", True),
        event("shadow_ended", "challenger", "rejected", True), event("rejected", "challenger", live=True),
        event("shadow_ended", "challenger", "dropped"), event("rejected"), event("promoted"),
    ]  # fmt: skip
    assert [r["kind"] for r in event_rows(events)] == [
        "passed offline → shadow", "promoted live", "old champion watches", "rolled back", "promoted back",
        "watch: new one holds", "rejected live", "shadow dropped", "rejected", "promoted"]  # fmt: skip

"""The built-in generator and the file replay's row → event mapping."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pandas as pd

from pricemyride.datafile import CRAIGSLIST_COLUMNS
from pricemyride.errors import InvalidListing
from pricemyride.generator import generate_listings, generator_params
from pricemyride.parsing import parse_listing
from producers.replay import row_event

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def test_generator_is_reproducible_and_has_the_craigslist_columns() -> None:
    first, again = generate_listings(500, seed=3), generate_listings(500, seed=3)
    pd.testing.assert_frame_equal(first.drop(columns="posting_date"), again.drop(columns="posting_date"))
    assert set(CRAIGSLIST_COLUMNS) <= set(first.columns)
    assert first["id"].is_unique


def test_generated_prices_follow_the_fitted_figures() -> None:
    frame = generate_listings(20_000, seed=1, dirty=False)
    age = frame["posting_date"].str[:4].astype(int) - frame["year"]
    young, old = frame.loc[age <= 3, "price"].median(), frame.loc[age >= 12, "price"].median()
    assert young > 1.5 * old, "older cars are cheaper"
    low, high = (
        frame.loc[frame["odometer"] < 30_000, "price"].median(),
        frame.loc[frame["odometer"] > 150_000, "price"].median(),
    )
    assert low > high, "more miles, lower price"


def test_generator_adds_the_dirt_of_real_listings() -> None:
    frame = generate_listings(20_000, seed=2)
    dirt = generator_params()["dirt"]
    assert math.isclose((frame["price"] == 0).mean(), dirt["price_zero"], abs_tol=0.01)
    assert frame["condition"].isna().mean() > 0.05


def test_most_generated_listings_satisfy_the_contract() -> None:
    rows = generate_listings(2_000, seed=4).to_dict("records")
    valid = 0
    for i, row in enumerate(rows):
        try:
            parse_listing(json.dumps(row_event(row, "generator", f"g{i}", NOW)))
            valid += 1
        except InvalidListing:
            pass
    assert 0.98 < valid / len(rows) < 1.0, "realistic dirt: a few absurd odometers, the rest valid"


def test_row_event_drops_missing_values_and_fills_a_stable_id() -> None:
    row = {"id": None, "price": 5000, "year": 2010.0, "model": float("nan"), "odometer": pd.NA, "region": "x"}
    event = row_event(row, "file:x.csv", "x-r12", NOW)
    assert event["id"] == "x-r12"
    assert "model" not in event
    assert "odometer" not in event
    assert event["event_time"] == NOW.isoformat()
    assert parse_listing(json.dumps(event)).price == 5000


def test_a_large_sample_posts_nothing_in_the_future() -> None:
    from datetime import UTC, datetime

    start = datetime(2026, 1, 1, tzinfo=UTC)
    frame = generate_listings(200_000, seed=3, start=start)
    posted = pd.to_datetime(frame["posting_date"], utc=True)
    assert posted.max() == start
    assert posted.is_monotonic_increasing

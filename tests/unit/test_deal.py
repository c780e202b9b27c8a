"""Deal ratings from where the asking price falls against the range (thresholds in pricing/deal.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pricing.deal import deal_ratings

FAIR, LOW, HIGH = 20_000.0, 16_000.0, 26_000.0


@pytest.mark.parametrize(
    ("asking", "rating"),
    [
        (15_000, "great"),  # below the range
        (16_000, "good"),  # the low end: z = -1
        (18_000, "good"),  # z = -0.5
        (19_000, "fair"),  # z = -0.25
        (20_000, "fair"),
        (21_800, "fair"),  # z = +0.3
        (23_000, "high"),  # z = +0.5
        (26_000, "high"),  # the high end: z = +1
        (26_001, "overpriced"),
        (499, None),  # a token price is not an offer
        (np.nan, None),  # no asking price
    ],
)
def test_rating_follows_the_position_in_the_range(asking: float, rating: str | None) -> None:
    (got,) = deal_ratings(np.array([asking]), np.array([FAIR]), np.array([LOW]), np.array([HIGH]))
    assert got == rating


@pytest.mark.parametrize(
    ("low", "high", "rating"),
    [
        (12_000.0, 31_999.0, "fair"),  # width 99.995% of the fair price: still judged
        (12_000.0, 32_000.0, "fair"),  # exactly 100%: still judged
        (12_000.0, 32_001.0, "not enough information"),
        (2_000.0, 60_000.0, "not enough information"),
    ],
)
def test_a_range_wider_than_the_fair_price_gives_no_badge(low: float, high: float, rating: str) -> None:
    (got,) = deal_ratings(np.array([20_000.0]), np.array([FAIR]), np.array([low]), np.array([high]))
    assert got == rating


def test_no_asking_price_is_no_rating_even_when_the_range_is_wide() -> None:
    (got,) = deal_ratings(np.array([np.nan]), np.array([FAIR]), np.array([2_000.0]), np.array([60_000.0]))
    assert got is None

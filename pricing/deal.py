"""Deal ratings: where the asking price falls against the model's 80% fair-price range.

The position ``z`` is the asking price's distance from the fair price, in units of the range's half on
that side: ``(asking − fair) / (fair − low)`` below the fair price, ``(asking − fair) / (high − fair)``
above it. So z = −1 is the range's low end and z = +1 its high end.

    great        z < −1          below the range: cheaper than 9 in 10 comparable cars
    good         −1 ≤ z < −0.3   in the lower part of the range
    fair         −0.3 ≤ z ≤ 0.3  around the fair price
    high         0.3 < z ≤ 1     in the upper part of the range
    overpriced   z > 1           above the range

No rating without an asking price of at least $500 (token prices are not offers).

When the range is too wide for its fair price — wider than ``MAX_RELATIVE_WIDTH`` times it, as for a
listing without a year or a model name on a car that is hard to price — the rating is
``not enough information``: a badge there would claim more than the model knows.
"""

from __future__ import annotations

from typing import Final

import numpy as np

DEAL_RATINGS: Final = ("great", "good", "fair", "high", "overpriced")
NOT_ENOUGH_INFORMATION: Final = "not enough information"
MAX_RELATIVE_WIDTH: Final = 1.0  # (high − low) / fair above this: not enough information
MIN_ASKING: Final = 500.0
GOOD_BELOW: Final = -0.3
HIGH_ABOVE: Final = 0.3


def range_position(asking: np.ndarray, fair: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    below = (asking - fair) / np.maximum(fair - low, 1e-9)
    above = (asking - fair) / np.maximum(high - fair, 1e-9)
    return np.where(asking < fair, below, above)


def deal_ratings(asking: np.ndarray, fair: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[str | None]:
    """One rating per listing (None where the asking price is missing or a token)."""
    asking = np.asarray(asking, dtype="float64")
    z = range_position(asking, fair, low, high)
    choice = np.select([z < -1, z < GOOD_BELOW, z <= HIGH_ABOVE, z <= 1], DEAL_RATINGS[:4], DEAL_RATINGS[4])
    too_wide = (np.asarray(high) - np.asarray(low)) > MAX_RELATIVE_WIDTH * np.asarray(fair)
    choice = np.where(too_wide, NOT_ENOUGH_INFORMATION, choice)
    usable = np.isfinite(asking) & (asking >= MIN_ASKING)
    return [str(c) if ok else None for c, ok in zip(choice, usable, strict=True)]

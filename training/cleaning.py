"""Which listings may serve as training labels. Scoring takes every valid listing; training is pickier.

A listing is a label when its price is one: only the price rules, the not-a-car rule and duplicates drop
a row. A missing field never does — sites send listings without a year or a model name, and the model
must learn to price them. A field value that cannot be true (a 1901 model year, ten million miles) is
blanked, not dropped: the price is still a good label, the field is not.

``clean`` blanks, then runs the drop rules in order, and reports how many rows each rule removed and how
many values each blanking rule emptied. The same rules decide which streamed listings may later serve as
labels: a listing priced $1 is still scored, but never trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pandas as pd

MIN_PRICE: Final = 500.0
MAX_PRICE: Final = 250_000.0
MAX_ODOMETER: Final = 500_000.0
MIN_YEAR: Final = 1960
# Prices that mean "call me", not a value: runs of one digit and counting sequences.
ANCHOR_PRICES: Final = frozenset(
    {int(str(d) * n) for d in range(1, 10) for n in range(3, 8)} | {int("1234567890"[:n]) for n in range(3, 10)}
)
CAR_KEY: Final = ("manufacturer", "model", "year", "odometer")
# Fields that are the same car's wherever it is posted (a re-post differs in id, region, place and date).
LISTING_KEY: Final = ("price", "year", "manufacturer", "model", "condition", "cylinders", "fuel", "odometer",
                      "title_status", "transmission", "drive", "size", "type", "paint_color")  # fmt: skip

MIN_KEY_FIELDS: Final = 6

Rule = Callable[[pd.DataFrame], pd.Series]


def _number(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce")


def price_missing_or_token(frame: pd.DataFrame) -> pd.Series:
    """No price, or a token price ($0, $1, … under $500) that says nothing about value."""
    return ~(_number(frame, "price") >= MIN_PRICE)


def price_anchor(frame: pd.DataFrame) -> pd.Series:
    """Placeholder prices such as 1111, 12345 or 99999."""
    return _number(frame, "price").isin(ANCHOR_PRICES)


def price_absurd(frame: pd.DataFrame) -> pd.Series:
    """Above $250,000: typos, leases quoted as totals, or collector cars outside the market we price."""
    return _number(frame, "price") > MAX_PRICE


def parts_only(frame: pd.DataFrame) -> pd.Series:
    """Parts-only titles are not cars on the road. Salvage and rebuilt titles stay: they are priced lower,
    and title_status is a feature."""
    return frame["title_status"].astype("string").str.lower().eq("parts only").fillna(False).astype(bool)


def car_keys(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """What identifies a car, as compared text (lower case, stripped; missing stays missing): the
    ``CAR_KEY`` fields, whether all four are given, and the ``LISTING_KEY`` fields for when they are not.
    Cross-posts (here) and the splits' car groups (``training.splits``) read the same keys."""
    key = frame[list(CAR_KEY)].astype("string").apply(lambda s: s.str.lower().str.strip())
    whole = frame.reindex(columns=list(LISTING_KEY)).astype("string").apply(lambda s: s.str.lower().str.strip())
    return key, key.notna().all(axis=1), whole


def cross_posted(frame: pd.DataFrame) -> pd.Series:
    """The same car posted more than once (keep the first): same make, model, year and odometer where all
    four are given; where one is missing, the same price and car fields (``LISTING_KEY``, at least
    ``MIN_KEY_FIELDS`` of them given)."""
    key, complete, whole = car_keys(frame)
    telling = whole.notna().sum(axis=1) >= MIN_KEY_FIELDS  # a sparse pair (same make and price) may be two cars
    return (key.duplicated(keep="first") & complete) | (
        whole.fillna("?").duplicated(keep="first") & ~complete & telling
    )


def year_impossible(frame: pd.DataFrame) -> pd.Series:
    """A model year before 1960 (typos such as 1901; classics are priced by other rules)."""
    return _number(frame, "year") < MIN_YEAR


def odometer_impossible(frame: pd.DataFrame) -> pd.Series:
    """Over 500,000 miles, or under 10 miles on a car more than two years old (a placeholder)."""
    odometer, year = _number(frame, "odometer"), _number(frame, "year")
    posted = pd.to_datetime(frame["posting_date"], utc=True, errors="coerce", format="mixed").dt.year
    old = (posted.fillna(year.max()) - year) > 2
    return (odometer > MAX_ODOMETER) | ((odometer < 10) & old)


RULES: Final[dict[str, Rule]] = {
    "price_missing_or_token": price_missing_or_token,
    "price_anchor": price_anchor,
    "price_absurd": price_absurd,
    "parts_only": parts_only,
    "cross_posted": cross_posted,
}
BLANKING: Final[dict[str, tuple[str, Rule]]] = {
    "year_impossible": ("year", year_impossible),
    "odometer_impossible": ("odometer", odometer_impossible),
}


@dataclass(frozen=True)
class CleaningReport:
    """How many rows each drop rule removed (in the order the rules ran) and how many values each blanking
    rule emptied (the row stays)."""

    rows_in: int
    removed: dict[str, int]
    blanked: dict[str, int]

    @property
    def rows_out(self) -> int:
        return self.rows_in - sum(self.removed.values())

    def as_dict(self) -> dict[str, object]:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "removed": self.removed, "blanked": self.blanked}


def blank_impossible(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows with each impossible value emptied, and how many each rule emptied."""
    masks = {name: (column, rule(frame).fillna(False).astype(bool)) for name, (column, rule) in BLANKING.items()}
    frame = frame.copy()  # every mask is read from the values as given, then the values are blanked
    for column, mask in masks.values():
        frame.loc[mask, column] = None
    return frame, {name: int(mask.sum()) for name, (_, mask) in masks.items()}


def clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    """Blank impossible values, then apply every drop rule in order; the usable rows and the report."""
    rows_in = len(frame)
    frame, blanked = blank_impossible(frame)
    removed: dict[str, int] = {}
    for name, rule in RULES.items():
        mask = rule(frame).fillna(False).astype(bool)
        removed[name] = int(mask.sum())
        frame = frame.loc[~mask]
    return frame.copy(), CleaningReport(rows_in, removed, blanked)


def is_usable_label(frame: pd.DataFrame) -> pd.Series:
    """Row-wise: would this listing be kept as a label (ignoring cross-posting, which needs the batch)?"""
    keep = pd.Series(True, index=frame.index)
    for name, rule in RULES.items():
        if name != "cross_posted":
            keep &= ~rule(frame).fillna(False).astype(bool)
    return keep

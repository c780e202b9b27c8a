"""Which listings may serve as training labels. Scoring takes every valid listing; training is pickier.

Each rule is a small function returning the rows it removes. ``clean`` runs them in order and reports
how many rows each removed. The same rules decide which streamed listings may later serve as labels:
a listing priced $1 is still scored, but never trained on.
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


def year_missing_or_absurd(frame: pd.DataFrame) -> pd.Series:
    """No model year, or before 1960 (classics are priced by other rules)."""
    return ~(_number(frame, "year") >= MIN_YEAR)


def odometer_absurd(frame: pd.DataFrame) -> pd.Series:
    """Over 500,000 miles, or under 10 miles on a car more than two years old (a placeholder)."""
    odometer, year = _number(frame, "odometer"), _number(frame, "year")
    posted = pd.to_datetime(frame["posting_date"], utc=True, errors="coerce", format="mixed").dt.year
    old = (posted.fillna(year.max()) - year) > 2
    return (odometer > MAX_ODOMETER) | ((odometer < 10) & old)


def make_missing(frame: pd.DataFrame) -> pd.Series:
    """No manufacturer: mostly 'we buy cars' adverts, not listings of a car."""
    return frame["manufacturer"].isna()


def parts_only(frame: pd.DataFrame) -> pd.Series:
    """Parts-only titles are not cars on the road. Salvage and rebuilt titles stay: they are priced lower,
    and title_status is a feature."""
    return frame["title_status"].astype("string").str.lower().eq("parts only").fillna(False).astype(bool)


def cross_posted(frame: pd.DataFrame) -> pd.Series:
    """The same car posted in several regions: same make, model, year and odometer (keep the first)."""
    key = frame[list(CAR_KEY)].astype("string").apply(lambda s: s.str.lower().str.strip())
    complete = key.notna().all(axis=1)
    return key.duplicated(keep="first") & complete


RULES: Final[dict[str, Rule]] = {
    "price_missing_or_token": price_missing_or_token,
    "price_anchor": price_anchor,
    "price_absurd": price_absurd,
    "year_missing_or_absurd": year_missing_or_absurd,
    "odometer_absurd": odometer_absurd,
    "make_missing": make_missing,
    "parts_only": parts_only,
    "cross_posted": cross_posted,
}


@dataclass(frozen=True)
class CleaningReport:
    """How many rows each rule removed, in the order the rules ran."""

    rows_in: int
    removed: dict[str, int]

    @property
    def rows_out(self) -> int:
        return self.rows_in - sum(self.removed.values())

    def as_dict(self) -> dict[str, object]:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "removed": self.removed}


def clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    """Apply every rule in order; return the usable rows and what each rule removed."""
    removed: dict[str, int] = {}
    rows_in = len(frame)
    for name, rule in RULES.items():
        mask = rule(frame).fillna(False).astype(bool)
        removed[name] = int(mask.sum())
        frame = frame.loc[~mask]
    return frame.copy(), CleaningReport(rows_in, removed)


def is_usable_label(frame: pd.DataFrame) -> pd.Series:
    """Row-wise: would this listing be kept as a label (ignoring cross-posting, which needs the batch)?"""
    keep = pd.Series(True, index=frame.index)
    for name, rule in RULES.items():
        if name != "cross_posted":
            keep &= ~rule(frame).fillna(False).astype(bool)
    return keep

"""Which listings may serve as training labels. Scoring takes every valid listing; training is pickier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pandas as pd

MIN_PRICE: Final = 500.0
MAX_PRICE: Final = 250_000.0
MAX_ODOMETER: Final = 500_000.0
MIN_YEAR: Final = 1960


@dataclass(frozen=True)
class CleaningReport:
    """How many rows each rule removed, in the order the rules ran."""

    rows_in: int
    removed: dict[str, int]

    @property
    def rows_out(self) -> int:
        return self.rows_in - sum(self.removed.values())


def usable_labels(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop rows whose asking price cannot teach a fair price: anchors, absurd values, junk titles."""
    rules = {
        "price_missing_or_anchor": lambda f: pd.to_numeric(f["price"], errors="coerce").fillna(0) < MIN_PRICE,
        "price_absurd": lambda f: pd.to_numeric(f["price"], errors="coerce") > MAX_PRICE,
        "year_missing_or_old": lambda f: ~(pd.to_numeric(f["year"], errors="coerce") >= MIN_YEAR),
        "odometer_absurd": lambda f: pd.to_numeric(f["odometer"], errors="coerce") > MAX_ODOMETER,
        "manufacturer_missing": lambda f: f["manufacturer"].isna(),
        "parts_only_title": lambda f: f["title_status"].astype("string").str.lower().eq("parts only").fillna(False),
    }
    removed: dict[str, int] = {}
    rows_in = len(frame)
    for name, rule in rules.items():
        mask = rule(frame).astype(bool)
        removed[name] = int(mask.sum())
        frame = frame.loc[~mask]
    return frame.copy(), CleaningReport(rows_in, removed)

"""Features from raw listing fields. Every field but the basics may be missing at scoring time.

High-cardinality fields (model, region) become categoricals with the categories seen at least
``MIN_CATEGORY_COUNT`` times in training; XGBoost splits on them natively (no target encoding, so
nothing leaks from the label). Unseen values become missing, which the trees handle.
"""

from __future__ import annotations

from typing import Any, Final, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

CATEGORICAL: Final = (
    "manufacturer", "model_base", "model_two", "condition", "cylinders", "fuel", "title_status",
    "transmission", "drive", "size", "type", "paint_color", "state", "region",
)  # fmt: skip
MIN_CATEGORY_COUNT: Final = 5
MODEL_FORMAT: Final = 4  # bump when transform() or the meaning of the model output changes; others are refused


def _words(model: pd.Series) -> pd.Series:
    cleaned = model.astype("string").str.lower().str.replace(r"[^a-z0-9 ]+", "", regex=True).str.strip()
    return cleaned.str.split()


def normalise_model(manufacturer: pd.Series, model: pd.Series, words: int = 1) -> pd.Series:
    """'F-150 XLT SuperCrew' of 'Ford' → 'ford f150' (one word) or 'ford f150 xlt' (two words)."""
    parts = _words(model).map(lambda w: " ".join(w[:words]) if isinstance(w, list) and w else pd.NA)
    make = manufacturer.astype("string").str.lower().str.strip()
    return (make + " " + parts.astype("string")).astype("string")


def posting_year(frame: pd.DataFrame, default_year: float) -> pd.Series:
    """The year the listing was posted (fractional), or ``default_year`` when unknown."""
    if "posting_date" not in frame:
        return pd.Series(default_year, index=frame.index, dtype="float64")
    dates = pd.to_datetime(frame["posting_date"], utc=True, errors="coerce", format="mixed")
    return (dates.dt.year + (dates.dt.dayofyear - 1) / 365.25).astype("float64").fillna(default_year)


class ListingFeatures(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Raw listing columns → numeric features plus categoricals with categories fixed at fit time."""

    def fit(self, frame: pd.DataFrame, y: Any = None) -> Self:
        self.model_format_ = MODEL_FORMAT
        years = posting_year(frame, np.nan)
        self.default_year_ = float(years.median()) if years.notna().any() else float(pd.Timestamp.now("UTC").year)
        base = self._categoricals(frame)
        self.categories_ = {
            column: sorted(str(v) for v, n in base[column].value_counts().items() if n >= MIN_CATEGORY_COUNT)
            for column in CATEGORICAL
        }
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=frame.index)
        year = pd.to_numeric(frame["year"], errors="coerce").astype("float64")
        posted = posting_year(frame, self.default_year_)
        out["age"] = (posted - year - 0.5).clip(lower=0)
        out["odometer"] = pd.to_numeric(frame["odometer"], errors="coerce").astype("float64")
        out["miles_per_year"] = out["odometer"] / out["age"].clip(lower=0.5)
        for column in ("lat", "long"):
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        out["posted"] = posted  # the market moves: the same car cost more in 2021 than in 2020
        base = self._categoricals(frame)
        for column in CATEGORICAL:
            out[column] = pd.Categorical(base[column], categories=self.categories_[column])
        return out

    @staticmethod
    def _categoricals(frame: pd.DataFrame) -> pd.DataFrame:
        base = pd.DataFrame(index=frame.index)
        for column in CATEGORICAL:
            if column == "model_base":
                base[column] = normalise_model(frame["manufacturer"], frame["model"], words=1)
            elif column == "model_two":
                base[column] = normalise_model(frame["manufacturer"], frame["model"], words=2)
            else:
                base[column] = frame[column].astype("string").str.lower().str.strip()
        return base

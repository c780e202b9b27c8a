"""Features from raw listing fields. Every field but the basics may be missing at scoring time.

High-cardinality fields (model, region) become categoricals with the categories seen at least
``MIN_CATEGORY_COUNT`` times in training; XGBoost splits on them natively (no target encoding, so
nothing leaks from the label). Unseen values become missing, which the trees handle.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Final, Self, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

CATEGORICAL: Final = (
    "manufacturer", "model_base", "model_two", "condition", "cylinders", "fuel", "title_status",
    "transmission", "drive", "size", "type", "paint_color", "state", "region",
)  # fmt: skip
MIN_CATEGORY_COUNT: Final = 5
NOT_WORD: Final = re.compile(r"[^a-z0-9 ]+")
MODEL_FORMAT: Final = 4  # bump when transform() or the meaning of the model output changes; others are refused


def _on_uniques(values: pd.Series, clean: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``clean(values)``, computed once per distinct value: listings repeat makes, models and states a lot."""
    codes, uniques = pd.factorize(values.astype("object"), use_na_sentinel=True)
    cleaned = clean(pd.Series(uniques, dtype="object").astype("string")).array
    return pd.Series(cleaned.take(codes, allow_fill=True), index=values.index, dtype="string")


def _clean_text(values: pd.Series) -> pd.Series:
    return values.str.lower().str.strip()


@functools.lru_cache(maxsize=1 << 16)
def model_words(model: str) -> tuple[str, ...]:
    """'F-150 XLT' → ('f150', 'xlt'); cached, since a stream sees the same model names again and again."""
    return tuple(NOT_WORD.sub("", model.lower()).strip().split())


def _first_words(words: int) -> Callable[[pd.Series], pd.Series]:
    def clean(model: pd.Series) -> pd.Series:
        joined = [" ".join(model_words(m)[:words]) if isinstance(m, str) else "" for m in model]
        return pd.Series([j or pd.NA for j in joined], index=model.index, dtype="string")

    return clean


def normalise_model(manufacturer: pd.Series, model: pd.Series, words: int = 1) -> pd.Series:
    """'F-150 XLT SuperCrew' of 'Ford' → 'ford f150' (one word) or 'ford f150 xlt' (two words)."""
    make = _on_uniques(manufacturer, _clean_text)
    return (make + " " + _on_uniques(model, _first_words(words))).astype("string")


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
        out: dict[str, Any] = {}
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
            out[column] = _coded(base[column], self.categories_[column])
        return pd.DataFrame(out, index=frame.index)

    @staticmethod
    def _categoricals(frame: pd.DataFrame) -> pd.DataFrame:
        base = {}
        for column in CATEGORICAL:
            if column == "model_base":
                base[column] = normalise_model(frame["manufacturer"], frame["model"], words=1)
            elif column == "model_two":
                base[column] = normalise_model(frame["manufacturer"], frame["model"], words=2)
            else:
                base[column] = _on_uniques(frame[column], _clean_text)
        return pd.DataFrame(base, index=frame.index)


def _coded(values: pd.Series, categories: list[str]) -> pd.Categorical:
    """``pd.Categorical(values, categories)``, looking each distinct value up once (unknown → missing)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    known = pd.Index(categories, dtype="object").get_indexer(pd.Index(uniques, dtype="object"))
    full = np.where(codes >= 0, known[codes] if len(known) else -1, -1)
    return pd.Categorical.from_codes(cast(Any, full), categories=pd.Index(categories, dtype="object"))

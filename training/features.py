"""Features from raw listing fields. Every field but the basics may be missing at scoring time.

High-cardinality fields (model, region) become categoricals with the categories seen at least
``MIN_CATEGORY_COUNT`` times in training; XGBoost splits on them natively (no target encoding, so
nothing leaks from the label). Unseen values become missing, which the trees handle.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Self, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

CATEGORICAL: Final = (
    "manufacturer", "model_base", "model_two", "condition", "cylinders", "fuel", "title_status",
    "transmission", "drive", "size", "type", "paint_color", "state", "region",
)  # fmt: skip
NUMERIC: Final = ("age", "odometer", "miles_per_year", "lat", "long", "posted")
FEATURES: Final = (*NUMERIC, *CATEGORICAL)  # the order of transform()'s columns and of matrix()'s
MIN_CATEGORY_COUNT: Final = 5
MODEL_COLUMNS: Final = {"model_base": 1, "model_two": 2}  # words of the model name kept after the make
MAX_REMEMBERED: Final = 1 << 16
NOT_WORD: Final = re.compile(r"[^a-z0-9 ]+")
MODEL_FORMAT: Final = 5  # bump when transform() or the meaning of the model output changes; others are refused


def is_missing(value: Any) -> bool:
    """None, pd.NA or NaN: a field not given."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def clean_text(value: Any) -> str | None:
    """A raw categorical value as it is compared with the categories: lower case, stripped (None if missing)."""
    return None if is_missing(value) else str(value).lower().strip()


@functools.lru_cache(maxsize=1 << 16)
def model_words(model: str) -> tuple[str, ...]:
    """'F-150 XLT' → ('f150', 'xlt')."""
    return tuple(NOT_WORD.sub("", model.lower()).strip().split())


def model_name(manufacturer: Any, model: Any, words: int) -> str | None:
    """'Ford', 'F-150 XLT SuperCrew' → 'ford f150' (one word) or 'ford f150 xlt' (two words)."""
    make = clean_text(manufacturer)
    if make is None or is_missing(model):
        return None
    joined = " ".join(model_words(str(model))[:words])
    return f"{make} {joined}" if joined else None


class CategoryCodes:
    """One column's category codes, with the code of every raw value seen remembered: a stream repeats the
    same makes, models and regions all day, so each distinct value is cleaned and looked up once."""

    def __init__(self, categories: list[str]) -> None:
        self.positions = {c: i for i, c in enumerate(categories)}
        self.dtype = pd.CategoricalDtype(pd.Index(categories, dtype="object"))
        self.seen: dict[Any, int] = {}

    def code(self, key: Any, clean: Callable[[Any], str | None]) -> int:
        found = self.seen.get(key)
        if found is None:
            text = clean(key)
            if text is None:
                return -1  # missing: not remembered (NaN keys never compare equal)
            found = self.positions.get(text, -1)
            if len(self.seen) >= MAX_REMEMBERED:
                self.seen.clear()
            self.seen[key] = found
        return found


def _raw_values(column: str, field: Callable[[str], list[Any]]) -> tuple[list[Any], Callable[[Any], str | None]]:
    """The raw values a categorical column is built from (``field(name)`` reads one input field), and how
    one of them becomes its text."""
    if column in MODEL_COLUMNS:
        words = MODEL_COLUMNS[column]
        keys = list(zip(field("manufacturer"), field("model"), strict=True))
        return keys, lambda key: model_name(key[0], key[1], words)
    return field(column), clean_text


def posting_year(frame: pd.DataFrame, default_year: float) -> pd.Series:
    """The year the listing was posted (fractional), or ``default_year`` when unknown."""
    if "posting_date" not in frame:
        return pd.Series(default_year, index=frame.index, dtype="float64")
    dates = pd.to_datetime(frame["posting_date"], utc=True, errors="coerce", format="mixed")
    return (dates.dt.year + (dates.dt.dayofyear - 1) / 365.25).astype("float64").fillna(default_year)


def _year_of(posted: datetime | None, default_year: float) -> float:
    """``posting_year`` for one validated (timezone-aware) posting date."""
    if posted is None:
        return default_year
    day = posted.astimezone(UTC)
    return day.year + (day.timetuple().tm_yday - 1) / 365.25


def _numbers(records: Sequence[Mapping[str, Any]], field: str) -> np.ndarray:
    return np.array([record.get(field) for record in records], dtype="float64")  # None → NaN


RECORD_NUMBERS: Final = ("year", "odometer", "lat", "long")


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame of listing columns as the records the stream's path reads: numbers as floats (NaN when
    missing or not a number), posting dates as timezone-aware datetimes (None when missing or unreadable,
    read as ``posting_year`` reads them), text as it is."""
    columns: dict[str, list[Any]] = {}
    for name in frame.columns:
        if name in RECORD_NUMBERS:
            columns[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64").tolist()
        elif name == "posting_date":
            dates = pd.to_datetime(frame[name], utc=True, errors="coerce", format="mixed")
            columns[name] = [None if pd.isna(d) else d.to_pydatetime() for d in dates]
        else:
            columns[name] = frame[name].tolist()
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


class ListingFeatures(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Raw listing columns → numeric features plus categoricals with categories fixed at fit time."""

    def fit(self, frame: pd.DataFrame, y: Any = None) -> Self:
        self.model_format_ = MODEL_FORMAT
        years = posting_year(frame, np.nan)
        self.default_year_ = float(years.median()) if years.notna().any() else float(pd.Timestamp.now("UTC").year)
        self.categories_ = {}
        for column in CATEGORICAL:
            keys, clean = _raw_values(column, lambda name: frame[name].tolist())
            counts = Counter(text for text in map(clean, keys) if text is not None)
            self.categories_[column] = sorted(text for text, n in counts.items() if n >= MIN_CATEGORY_COUNT)
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
        for column in CATEGORICAL:
            keys, clean = _raw_values(column, lambda name: frame[name].tolist())
            lookup = self._codes(column)
            codes = np.fromiter((lookup.code(key, clean) for key in keys), dtype=np.int32, count=len(keys))
            out[column] = pd.Categorical.from_codes(cast(Any, codes), dtype=lookup.dtype)
        return pd.DataFrame(out, index=frame.index)

    def matrix(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """``transform`` for validated listings (their fields as dicts), as the float array xgboost reads:
        columns in ``FEATURES`` order, categoricals as codes, missing as NaN.

        The stream's path: no DataFrame is built, which on a batch of a dozen listings is most of the time
        spent. The arithmetic is ``transform``'s, in float64, and a test holds the two paths equal.
        """
        year = _numbers(records, "year")
        posted = np.array([_year_of(r.get("posting_date"), self.default_year_) for r in records], dtype="float64")
        age = np.maximum(posted - year - 0.5, 0)
        odometer = _numbers(records, "odometer")
        columns = [age, odometer, odometer / np.maximum(age, 0.5), _numbers(records, "lat"), _numbers(records, "long"),
                   posted]  # fmt: skip
        for column in CATEGORICAL:
            lookup = self._codes(column)
            keys, clean = _raw_values(column, lambda name: [r.get(name) for r in records])
            codes = np.fromiter((lookup.code(key, clean) for key in keys), dtype="float64", count=len(keys))
            codes[codes < 0] = np.nan
            columns.append(codes)
        return np.column_stack(columns).astype("float32") if records else np.empty((0, len(FEATURES)), "float32")

    def _codes(self, column: str) -> CategoryCodes:
        lookups: dict[str, CategoryCodes] = self.__dict__.setdefault("_lookups", {})
        if column not in lookups:
            lookups[column] = CategoryCodes(self.categories_[column])
        return lookups[column]

    def __getstate__(self) -> dict[str, Any]:
        """What is pickled with the model: the fitted attributes, not the remembered codes."""
        state = dict(super().__getstate__())
        state.pop("_lookups", None)
        return state

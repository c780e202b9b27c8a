"""The data a model learns from: training rows, the model's input columns, and the honest splits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pricemyride.datafile import read_listings_file
from pricemyride.generator import PARAMS_FILE, generate_listings
from pricemyride.listing import FEATURE_FIELDS
from training.cleaning import clean
from training.splits import split_by_car, split_by_car_and_time

GENERATED_ROWS = 20_000
NUMERIC_INPUTS = ("year", "odometer", "lat", "long")


@dataclass(frozen=True)
class Splits:
    """Train (fit), valid (early stopping), calibration (the range) and test (held out by car and time).

    The calibration part is cut like the test part — the latest listings before it, plus a share of the
    undated cars — so the range is calibrated on the market closest to the one it will be used on."""

    train: pd.DataFrame
    valid: pd.DataFrame
    calibration: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("train", "valid", "calibration", "test")}


def load_training_frame(data: Path | None, limit: int | None) -> tuple[pd.DataFrame, str]:
    """The listings to learn from and a fingerprint of their source."""
    if data is None:
        # Posted up to the start of today (UTC), not up to now: the same sample all day long, so a seeded
        # run repeats (with "now", the rows around a midnight shifted from one day to the next between runs).
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        frame = generate_listings(GENERATED_ROWS, seed=7, start=today)
        return (frame.head(limit) if limit else frame), "generator:" + file_sha256(PARAMS_FILE)
    frame = read_listings_file(data)
    return (frame.head(limit) if limit else frame), file_sha256(data)


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns, typed as the stream delivers them (numbers as float, text as str)."""
    out = frame.reindex(columns=list(FEATURE_FIELDS)).copy()
    for column in NUMERIC_INPUTS:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    for column in out.columns.difference(list(NUMERIC_INPUTS)):
        out[column] = out[column].astype("object").where(out[column].notna(), None)  # type: ignore[call-overload]
    return out


def prices(frame: pd.DataFrame) -> pd.Series:
    return pd.to_numeric(frame["price"]).astype("float64")


def make_splits(frame: pd.DataFrame, seed: int = 42) -> Splits:
    pool, test = split_by_car_and_time(frame, seed=seed)
    rest, calibration = split_by_car_and_time(pool, seed=seed + 2)  # the range is calibrated on the latest
    train, valid = split_by_car(rest, 0.12, seed=seed + 1)
    return Splits(train, valid, calibration, test)


def frame_sha256(frame: pd.DataFrame) -> str:
    """A fingerprint of a DataFrame's content (for data that is not one file)."""
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pooled(splits: Splits, pool: pd.DataFrame | None) -> Splits:
    """The split with ``pool``'s rows added to the training part only (valid, calibration and test stay)."""
    return splits if pool is None else replace(splits, train=pd.concat([splits.train, pool], ignore_index=True))


def clean_file(path: Path | None) -> pd.DataFrame | None:
    """A second file's usable rows; undated rows take the file's latest posting date (its vintage)."""
    if path is None:
        return None
    usable, _ = clean(read_listings_file(path))
    dates = pd.to_datetime(usable["posting_date"], utc=True, errors="coerce", format="mixed")
    latest = dates.max()
    if pd.notna(latest):
        usable["posting_date"] = usable["posting_date"].where(dates.notna(), latest.isoformat())
    return usable

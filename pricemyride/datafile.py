"""Read listing files in the Craigslist format (CSV or parquet), dirt included."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pandas as pd

from pricemyride.errors import DataFileError

CRAIGSLIST_COLUMNS: Final = (
    "id", "region", "price", "year", "manufacturer", "model", "condition", "cylinders", "fuel",
    "odometer", "title_status", "transmission", "drive", "size", "type", "paint_color", "state",
    "lat", "long", "posting_date",
)  # fmt: skip
REQUIRED_COLUMNS: Final = ("price", "year", "manufacturer", "model", "odometer")
TEXT_COLUMNS: Final = (
    "id", "region", "manufacturer", "model", "condition", "cylinders", "fuel", "title_status",
    "transmission", "drive", "size", "type", "paint_color", "state", "posting_date",
)  # fmt: skip


def read_listings_file(path: Path) -> pd.DataFrame:
    """Load a Craigslist-format file; ids are kept as text (``7184791621``, not ``7184791621.0``)."""
    if not path.is_file():
        raise DataFileError(f"expected a CSV or parquet listings file at {path}, found nothing there")
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype={"id": "string"}, low_memory=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFileError(f"{path}: expected Craigslist columns {', '.join(REQUIRED_COLUMNS)}, missing {missing}")
    for column in CRAIGSLIST_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.NA
    frame["id"] = frame["id"].astype("string").str.removesuffix(".0")
    return frame

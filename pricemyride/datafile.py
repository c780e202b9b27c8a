"""Read listing files in the Craigslist format (CSV or Parquet), dirt included.

Every way a file can be wrong — not there, a folder, an unknown extension, empty, header only, not UTF-8,
another separator, not the Parquet its name says — is one ``DataFileError`` line naming the file, what was
expected and what arrived.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow

from pricemyride.errors import DataFileError, NoInputFile

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
SUFFIXES: Final = (".csv", ".parquet")
OTHER_SEPARATORS: Final = (";", "\t", "|")


def plain(value: Any) -> Any:
    """A cell as a plain Python value: None for every kind of missing, numpy scalars as Python ones."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def given_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The Craigslist fields of a file row that have a value, as a listing site would send them."""
    return {k: v for k in CRAIGSLIST_COLUMNS if (v := plain(row.get(k))) is not None}


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except (pyarrow.ArrowException, OSError) as exc:
            raise DataFileError(f"{path}: expected a Parquet file (by its name), got {str(exc)[:120]}") from exc
    try:
        return pd.read_csv(path, dtype={"id": "string"}, low_memory=False)
    except UnicodeDecodeError as exc:
        raise DataFileError(
            f"{path}: expected UTF-8 CSV text, got a byte that is not UTF-8 at offset {exc.start} "
            "(binary, or another encoding such as latin-1: save it as UTF-8)"
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataFileError(f"{path}: expected a CSV header and listings, got an empty file") from exc
    except pd.errors.ParserError as exc:
        raise DataFileError(f"{path}: expected CSV text, got {str(exc).strip()[:160]}") from exc


def _separator_hint(frame: pd.DataFrame) -> str:
    header = ",".join(str(c) for c in frame.columns)
    found = [sep for sep in OTHER_SEPARATORS if sep in header]
    return f" (the header has {found[0]!r}: use commas as separators)" if found else ""


def read_listings_file(path: Path, required: tuple[str, ...] = REQUIRED_COLUMNS) -> pd.DataFrame:
    """Load a Craigslist-format file; ids are kept as text (``7184791621``, not ``7184791621.0``).

    ``required`` columns must be there; any other Craigslist column that is missing means "not given"."""
    if not path.exists():
        raise NoInputFile(f"{path}: expected a CSV or Parquet listings file, found nothing there")
    if path.is_dir():
        raise NoInputFile(f"{path}: expected a CSV or Parquet listings file, got a directory")
    if path.suffix not in SUFFIXES:
        raise DataFileError(f"{path}: expected a file named .csv or .parquet, got {path.suffix or 'no extension'!r}")
    frame = _read(path)
    missing = [c for c in required if c not in frame.columns]
    known = [c for c in frame.columns if c in CRAIGSLIST_COLUMNS]
    if missing or not known:
        raise DataFileError(
            f"{path}: expected Craigslist columns ({', '.join(required or CRAIGSLIST_COLUMNS)}), "
            f"missing {missing or 'all of them'}{_separator_hint(frame)}"
        )
    if frame.empty:
        raise DataFileError(f"{path}: expected at least one listing, got a header only")
    for column in CRAIGSLIST_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.NA
    frame["id"] = frame["id"].astype("string").str.removesuffix(".0")
    return frame

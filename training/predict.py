"""Batch-score a Craigslist-format file with the champion, by the stream's own rules.

Each row is checked as the stream checks a listing event (``parse_listing``): a row the stream would
dead-letter gets ``valid = False`` and the stream's ``reason`` and no price. A missing optional column means
"not given", as on the stream. Valid rows are priced by the stream's pricing path. The output is CSV or
Parquet by its extension, never the input file itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson
import pandas as pd
import pyarrow

from pricemyride.datafile import given_fields, read_listings_file
from pricemyride.errors import InvalidListing, OutputError
from pricemyride.events import Listing, parse_listing
from pricemyride.settings import Settings
from stream_workers.scoring import price_listings
from training.registry import load_champion

WRITERS: Final = {".csv": "to_csv", ".parquet": "to_parquet"}
PRICE_COLUMNS: Final = ("predicted_price", "price_low", "price_high", "deal_rating")


@dataclass(frozen=True)
class PredictSummary:
    """How many rows the file had, how many were priced, how many the stream would refuse."""

    rows: int
    priced: int
    invalid: int


def check_output(data: Path, out: Path) -> None:
    if out.suffix not in WRITERS:
        raise OutputError(f"{out}: expected an output file named .csv or .parquet, got {out.suffix or 'none'!r}")
    if out.is_dir():
        raise OutputError(f"{out}: expected a file to write, got a directory")
    if out.resolve() == data.resolve():
        raise OutputError(f"{out}: expected an output other than the input file, got the input itself")


def row_event(row: dict[str, Any], fallback_id: str) -> bytes:
    """A file row as the listing event a site would send: the Craigslist fields that have a value."""
    return orjson.dumps({"id": fallback_id} | given_fields(row))


def validate_rows(frame: pd.DataFrame, stem: str) -> tuple[list[Listing | None], list[str]]:
    """Per row, the validated listing (or None) and the stream's reason for refusing it ('' when valid)."""
    listings: list[Listing | None] = []
    reasons: list[str] = []
    records: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    for number, row in enumerate(records):
        try:
            listings.append(parse_listing(row_event(row, f"{stem}-r{number}")))
            reasons.append("")
        except InvalidListing as exc:
            listings.append(None)
            reasons.append(str(exc))
    return listings, reasons


def price_columns(model: Any, version: int, listings: list[Listing | None], reasons: list[str]) -> pd.DataFrame:
    """The price columns for every row: priced where valid, empty (with the reason) where not."""
    valid = [i for i, listing in enumerate(listings) if listing is not None]
    priced = price_listings(model, version, [listings[i] for i in valid], datetime.now(UTC))  # type: ignore[misc]
    values: dict[str, list[Any]] = {column: [None] * len(listings) for column in PRICE_COLUMNS}
    for i, outcome in zip(valid, priced, strict=True):
        if isinstance(outcome, str):
            reasons[i] = outcome
            continue
        for column in PRICE_COLUMNS:
            values[column][i] = getattr(outcome, column)
    out = pd.DataFrame(values).astype({c: "float64" for c in PRICE_COLUMNS[:3]})
    out["valid"] = [not reason for reason in reasons]
    out["reason"] = reasons
    out["model_version"] = version
    return out


def write(result: pd.DataFrame, out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        getattr(result, WRITERS[out.suffix])(out, index=False)
    except (OSError, pyarrow.ArrowException) as exc:
        raise OutputError(f"{out}: expected a writable {out.suffix} file, got {exc}") from exc


def batch_predict(settings: Settings, data: Path, out: Path) -> PredictSummary:
    """Write the file's rows plus ``valid``, ``reason``, the price columns and ``model_version`` to ``out``."""
    check_output(data, out)
    frame = read_listings_file(data, required=()).reset_index(drop=True)
    fallback = pd.Series([f"{data.stem}-r{number}" for number in range(len(frame))], dtype="string")
    frame["id"] = frame["id"].fillna(fallback)  # rows without an id get the replay's stable one
    champion = load_champion(settings)
    listings, reasons = validate_rows(frame, data.stem)
    scored = price_columns(champion.model, champion.version, listings, reasons)
    write(pd.concat([frame, scored], axis=1), out)
    return PredictSummary(rows=len(scored), priced=int(scored["predicted_price"].notna().sum()),
                          invalid=int((~scored["valid"]).sum()))  # fmt: skip

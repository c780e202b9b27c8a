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

from pricemyride.datafile import CRAIGSLIST_COLUMNS, read_listings_file
from pricemyride.errors import InvalidListing, OutputError
from pricemyride.events import Listing, parse_listing
from pricemyride.settings import Settings
from stream_workers.scoring import PredictionRow, price_listings
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
    event = {k: v for k in CRAIGSLIST_COLUMNS if (v := _plain(row.get(k))) is not None}
    event.setdefault("id", fallback_id)
    return orjson.dumps(event)


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value


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
    out = pd.DataFrame(index=range(len(listings)), columns=list(PRICE_COLUMNS), dtype="object")
    valid = [i for i, listing in enumerate(listings) if listing is not None]
    priced = price_listings(model, version, [listings[i] for i in valid], datetime.now(UTC))  # type: ignore[misc]
    for i, outcome in zip(valid, priced, strict=True):
        if isinstance(outcome, PredictionRow):
            out.loc[i, list(PRICE_COLUMNS)] = [outcome.predicted_price, outcome.price_low, outcome.price_high,
                                               outcome.deal_rating]  # fmt: skip
        else:
            reasons[i] = outcome
    out["valid"] = [not reason for reason in reasons]
    out["reason"] = reasons
    out["model_version"] = version
    return out


def batch_predict(settings: Settings, data: Path, out: Path) -> PredictSummary:
    """Write the file's rows plus ``valid``, ``reason``, the price columns and ``model_version`` to ``out``."""
    check_output(data, out)
    frame = read_listings_file(data, required=()).reset_index(drop=True)
    fallback = pd.Series([f"{data.stem}-r{number}" for number in range(len(frame))], dtype="string")
    frame["id"] = frame["id"].fillna(fallback)  # rows without an id get the replay's stable one
    champion = load_champion(settings)
    listings, reasons = validate_rows(frame, data.stem)
    scored = price_columns(champion.model, champion.version, listings, reasons)
    for column in PRICE_COLUMNS[:3]:
        scored[column] = pd.to_numeric(scored[column])
    result = pd.concat([frame, scored], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        getattr(result, WRITERS[out.suffix])(out, index=False)
    except OSError as exc:
        raise OutputError(f"{out}: expected a writable file, got {exc.strerror or exc}") from exc
    return PredictSummary(rows=len(result), priced=int(scored["predicted_price"].notna().sum()),
                          invalid=int((~scored["valid"]).sum()))  # fmt: skip

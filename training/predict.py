"""Batch-score a Craigslist-format file with the champion, by the stream's own rules.

Each row is checked and priced by the pricing path's DataFrame adapter (``pricing.frames``): a row the
stream would dead-letter gets ``valid = False``, the stream's ``reason`` and no price. A missing optional
column means "not given", as on the stream. The output is CSV or Parquet by its extension, never the input
file itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow

from pricemyride.datafile import read_listings_file
from pricemyride.errors import OutputError
from pricemyride.settings import Settings
from pricing.frames import price_frame
from training.registry import load_champion

WRITERS: Final = {".csv": "to_csv", ".parquet": "to_parquet"}


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
    scored = price_frame(champion.model, champion.version, frame, data.stem)
    write(pd.concat([frame, scored], axis=1), out)
    return PredictSummary(rows=len(scored), priced=int(scored["predicted_price"].notna().sum()),
                          invalid=int((~scored["valid"]).sum()))  # fmt: skip

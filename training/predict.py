"""Batch-score a Craigslist-format file with the champion model."""

from __future__ import annotations

from pathlib import Path

from pricemyride.datafile import read_listings_file
from pricemyride.settings import Settings
from training.registry import load_champion
from training.train import model_input


def batch_predict(settings: Settings, data: Path, out: Path) -> int:
    """Write the file's listings plus ``predicted_price`` and ``model_version`` to ``out``; return rows."""
    frame = read_listings_file(data)
    champion = load_champion(settings)
    frame["predicted_price"] = champion.model.predict(model_input(frame)).round(2)
    frame["model_version"] = champion.version
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    return len(frame)

"""Batch-score a Craigslist-format file with the champion model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pricemyride.datafile import read_listings_file
from pricemyride.settings import Settings
from training.deal import deal_ratings
from training.registry import load_champion
from training.train import model_input


def score_frame(model: object, frame: pd.DataFrame) -> pd.DataFrame:
    """The fair price, its 80% range and the deal rating for every row of ``frame``."""
    predicted = model.predict_range(model_input(frame))  # type: ignore[attr-defined]
    asking = pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype="float64")
    predicted["deal_rating"] = deal_ratings(
        asking, *(predicted[c].to_numpy() for c in ("predicted_price", "price_low", "price_high"))
    )
    return predicted.round({"predicted_price": 2, "price_low": 2, "price_high": 2})


def batch_predict(settings: Settings, data: Path, out: Path) -> int:
    """Write the file's listings plus the price columns and ``model_version`` to ``out``; return rows."""
    frame = read_listings_file(data)
    champion = load_champion(settings)
    frame = pd.concat([frame, score_frame(champion.model, frame).set_index(frame.index)], axis=1)
    frame["model_version"] = champion.version
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    return len(frame)

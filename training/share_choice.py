"""The default of ``SourcePolicy.max_share`` (one source's largest share of a retrain), chosen on validation.

``python -m training.share_choice`` (``make share-choice``): the 2021 file's real listings, with the public
sample each came from as its ``source`` (four samples that differ in sellers and price level), stored as a
2020 champion priced them, split as every training run splits them. Two scenarios on the training part:

- **honest**: the four sources as they are (their real, unequal shares);
- **copying flood**: a fifth site republishes every training listing of the four twice, at 1.25× and 1.35×
  its price — under ``max_shift`` (1.5), so the shift test does not set it aside, and two thirds of all
  rows: only the cap limits it.

A choice part (15% of the training part's cars) is kept apart first: the validation part already stops the
trees early, so it does not also judge them. For each candidate share the guard (``training.sources``) runs
on the rest of the training part, a model is fitted and scored on the choice part: the MAE of each honest
source, each source counting once (a small site counts as much as a large one). The choice is the share with
the lowest mean of that over both scenarios; the test part is scored only for the choice and for no cap.
Three cuts of the choice part (seeds 7, 8, 9), averaged. Results: ``reports/source_share.json``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from pricemyride.datafile import read_listings_file
from pricemyride.policy import SourcePolicy
from training.cleaning import clean
from training.data import Splits, make_splits, model_input, prices
from training.gate import per_source
from training.model import PriceModel, TrainParams
from training.sources import FAIR, SOURCE, guard_sources
from training.splits import split_by_car
from training.train import fit_model

CANDIDATES: Final = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
FLOOD: Final = "flood"
FLOOD_FACTORS: Final = (1.25, 1.35)
SEEDS: Final = (7, 8, 9)
PARAMS: Final = TrainParams(max_rounds=300)


def stored_2021(data_dir: Path) -> Splits:
    """The 2021 listings split, each with the fair price a champion trained on the 2020 file gave it."""
    champion = fit_model(make_splits(clean(read_listings_file(data_dir / "craigslist_2020.csv"))[0]), PARAMS)
    listings = clean(read_listings_file(data_dir / "craigslist_2021.csv"))[0]
    listings[SOURCE] = listings[SOURCE].str.split("/").str[0]
    listings[FAIR] = champion.predict(model_input(listings))
    return make_splits(listings)


def flooded(train: pd.DataFrame) -> pd.DataFrame:
    copies = [train.assign(price=train["price"] * factor) for factor in FLOOD_FACTORS]
    flood = pd.concat(copies, ignore_index=True)
    flood[SOURCE] = FLOOD
    return pd.concat([train, flood], ignore_index=True)


def per_source_mae(model: PriceModel, part: pd.DataFrame) -> dict[str, float]:
    figures = per_source(part, prices(part).to_numpy(), model.predict(model_input(part)), None)  # the gate's
    return {source: round(f["challenger_mae"], 1) for source, f in figures.items()}


def trial(splits: Splits, choice: pd.DataFrame, train: pd.DataFrame, share: float) -> tuple[PriceModel, dict]:
    guarded, report = guard_sources(train, SourcePolicy(max_share=share))
    model = fit_model(replace(splits, train=guarded), PARAMS)
    mae = per_source_mae(model, choice)
    return model, {"choice_mae": mae, "choice_score": round(float(np.mean(list(mae.values()))), 1),
                   "kept": report.kept, "set_aside": report.set_aside}  # fmt: skip


def choose_on(splits: Splits, seed: int) -> tuple[dict[str, Any], dict[tuple[str, float], PriceModel]]:
    """Every candidate in both scenarios on one cut of the choice part (15% of the training part's cars)."""
    train, choice = split_by_car(splits.train, 0.15, seed=seed)
    splits = replace(splits, train=train)
    scenarios = {"honest": train, "copying flood": flooded(train)}
    results: dict[str, Any] = {name: {} for name in scenarios}
    models: dict[tuple[str, float], PriceModel] = {}
    for share in CANDIDATES:
        for name, rows in scenarios.items():
            models[name, share], results[name][str(share)] = trial(splits, choice, rows, share)
            print(f"[share] seed {seed}, max_share {share}: {name}, MAE per source on the choice part "
                  f"{results[name][str(share)]['choice_mae']}", flush=True)  # fmt: skip
    return results, models


def choose(splits: Splits) -> dict[str, Any]:
    runs = {seed: choose_on(splits, seed) for seed in SEEDS}
    score = {share: float(np.mean([results[name][str(share)]["choice_score"]
                                   for results, _ in runs.values() for name in results]))
             for share in CANDIDATES}  # fmt: skip
    chosen = min(CANDIDATES, key=lambda share: score[share])
    test = {f"{name}, max_share {share}": mean_mae([per_source_mae(models[name, share], splits.test)
                                                    for _, models in runs.values()])
            for name in ("honest", "copying flood") for share in sorted({chosen, 0.5, 1.0})}  # fmt: skip
    return {"by_seed": {str(seed): results for seed, (results, _) in runs.items()},
            "score": {str(s): round(v, 1) for s, v in score.items()}, "chosen": chosen, "test_mae": test}  # fmt: skip


def mean_mae(runs: list[dict[str, float]]) -> dict[str, float]:
    return {source: round(float(np.mean([run[source] for run in runs])), 1) for source in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("reports/source_share.json"))
    args = parser.parse_args(argv)
    splits = stored_2021(args.data_dir)
    print(f"[share] 2021 listings {splits.sizes()}; training rows per source "
          f"{splits.train[SOURCE].value_counts().to_dict()}")  # fmt: skip
    result = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "flood_factors": list(FLOOD_FACTORS),
              "candidates": list(CANDIDATES), "seeds": list(SEEDS), **choose(splits)}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"[share] chosen max_share {result['chosen']} (mean MAE per source on the choice part, both scenarios, "
          f"3 cuts: {result['score']}); on the test part {result['test_mae']} → {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

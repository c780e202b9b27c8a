"""`pricemyride evaluate`: our model against two baselines on one honest split, written to reports/.

Baselines, trained and scored in the same run on the same split:
- **median**: the median asking price of the same (manufacturer, model, year), falling back to
  (manufacturer, year), then manufacturer, then all cars;
- **capstone**: the recipe of the project this one grew from — 11 features, rows with any missing
  dropped, price 100 … 200,900, standard scaling + one-hot, XGBoost ``reg:squarederror`` with its
  registered champion's parameters (depth 27, min child weight 7, eta 0.05, 100 rounds).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from training.cleaning import clean
from training.data import load_training_frame, make_splits, model_input, prices
from training.features import posting_year
from training.metrics import point_metrics, quality_metrics
from training.model import TrainParams
from training.train import fit_model, require_rows

log = logging.getLogger(__name__)
CAPSTONE_CATEGORICAL: Final = (
    "region", "manufacturer", "condition", "cylinders", "fuel", "transmission", "drive", "type", "paint_color",
)  # fmt: skip
CAPSTONE_NUMERIC: Final = ("odometer", "vehicle_age")
CAPSTONE_PARAMS: Final = {
    "objective": "reg:squarederror", "max_depth": 27, "min_child_weight": 7, "learning_rate": 0.05,
    "reg_lambda": 1.4e-4, "reg_alpha": 2.48e-3, "n_estimators": 100, "tree_method": "hist", "n_jobs": 2,
}  # fmt: skip


def median_baseline(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Median price of the same (make, model, year), with coarser fallbacks."""
    key = lambda f, cols: f[cols].astype("string").apply(lambda s: s.str.lower().str.strip()).agg("|".join, axis=1)  # noqa: E731
    out = pd.Series(np.nan, index=test.index)
    for cols in (["manufacturer", "model", "year"], ["manufacturer", "year"], ["manufacturer"]):
        medians = prices(train).groupby(key(train.fillna("?"), cols)).median()
        out = out.fillna(key(test.fillna("?"), cols).map(medians))
    return out.fillna(prices(train).median()).to_numpy()


def capstone_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[list(CAPSTONE_CATEGORICAL)].astype("string").apply(lambda s: s.str.lower())
    out["odometer"] = pd.to_numeric(frame["odometer"], errors="coerce")
    out["vehicle_age"] = np.floor(posting_year(frame, 2021.0)) - pd.to_numeric(frame["year"], errors="coerce")
    return out


def capstone_baseline(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The capstone's model: returns its predictions and the test rows it can score (no missing field)."""
    features, price = capstone_frame(train), prices(train)
    keep = features.notna().all(axis=1) & price.between(100, 200_900)
    pipeline = Pipeline([
        ("prep", ColumnTransformer([
            ("num", StandardScaler(), list(CAPSTONE_NUMERIC)),
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(CAPSTONE_CATEGORICAL)),
        ])),
        ("xgb", xgb.XGBRegressor(**CAPSTONE_PARAMS)),
    ])  # fmt: skip
    pipeline.fit(features[keep], price[keep])
    test_features = capstone_frame(test)
    scorable = test_features.notna().all(axis=1).to_numpy()
    predicted = np.full(len(test), np.nan)
    predicted[scorable] = pipeline.predict(test_features[scorable])
    return predicted, scorable


def evaluate(data: Path | None, limit: int | None = None, params: TrainParams | None = None) -> dict[str, Any]:
    """Fit our model and both baselines on one split; return every figure of the report."""
    started = time.monotonic()
    raw, data_hash = load_training_frame(data, limit)
    usable, cleaning = clean(raw)
    require_rows(usable, cleaning, data)
    splits = make_splits(usable)
    model = fit_model(splits, params or TrainParams())
    test_price = prices(splits.test).to_numpy()
    ours = model.predict_range(model_input(splits.test))
    capstone, scorable = capstone_baseline(splits.train, splits.test)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": str(data) if data else "generator",
        "data_sha256": data_hash,
        "cleaning": cleaning.as_dict(),
        "split": splits.sizes()
        | {"method": "test = latest 15% by posting date + 15% of undated cars; no car on both sides"},
        "best_iteration": model.best_iteration_,
        "model": quality_metrics(test_price, ours),
        "median_baseline": point_metrics(test_price, median_baseline(splits.train, splits.test)),
        "capstone_subset": {
            "rows": int(scorable.sum()),
            "model": point_metrics(test_price[scorable], ours["predicted_price"].to_numpy()[scorable]),
            "capstone": point_metrics(test_price[scorable], capstone[scorable]),
        },
        "seconds": round(time.monotonic() - started, 1),
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a short Markdown page."""
    o, m, c = report["model"]["overall"], report["median_baseline"], report["capstone_subset"]
    rows = [
        "| model | rows | MAE | median AE | RMSE | MAPE (≥$1k) | R² |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    compared = [
        ("PriceMyRide", o),
        ("median of make/model/year", m),
        ("PriceMyRide, capstone-scorable rows", c["model"]),
        ("capstone recipe, same rows", c["capstone"]),
    ]
    for name, x in compared:
        rows.append(f"| {name} | {x['rows']:.0f} | ${x['mae']:,.0f} | ${x['median_ae']:,.0f} | ${x['rmse']:,.0f} "
                    f"| {x['mape']:.1%} | {x['r2']:.3f} |")  # fmt: skip
    bands = ["| asking price | rows | MAE | MAPE | 80% range coverage | mean width |", "|---|---:|---:|---:|---:|---:|"]
    for name, x in report["model"]["bands"].items():
        bands.append(f"| {name} | {x['rows']:.0f} | ${x['mae']:,.0f} | {x['mape']:.1%} | {x['coverage']:.1%} "
                     f"| ${x['mean_width']:,.0f} |")  # fmt: skip
    return "\n".join([
        "# Model quality", "",
        f"Data: `{report['data']}` (sha256 {report['data_sha256'][:12]}…), generated {report['generated_at']}.",
        f"Cleaning kept {report['cleaning']['rows_out']:,} of {report['cleaning']['rows_in']:,} rows: "
        + ", ".join(f"{k} {v:,}" for k, v in report["cleaning"]["removed"].items()) + ".",
        f"Split: {report['split']['method']} — train {report['split']['train']:,}, valid {report['split']['valid']:,}, "
        f"calibration {report['split']['calibration']:,}, test {report['split']['test']:,}.", "",
        "## Held-out test set", "", *rows, "",
        f"80% range: coverage {o['coverage']:.1%}, mean width ${o['mean_width']:,.0f}.", "",
        "## By asking price", "", *bands, "",
    ])  # fmt: skip


def write_reports(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "model_quality.json", out_dir / "model_quality.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path

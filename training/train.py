"""Train a price model, log it to MLflow with its signature, register it and (optionally) crown it champion."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.model_selection import train_test_split

from pricemyride.datafile import CRAIGSLIST_COLUMNS, read_listings_file
from pricemyride.events import FEATURE_FIELDS
from pricemyride.settings import Settings
from producers.generator import generate_listings
from training.data import CleaningReport, usable_labels
from training.model import PriceModel, TrainParams
from training.registry import configure

log = logging.getLogger(__name__)
GENERATED_ROWS = 20_000
PIP_REQUIREMENTS = ["xgboost-cpu==3.2.0", "scikit-learn==1.7.2", "pandas==2.3.3"]


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced."""

    version: int
    run_id: str
    metrics: dict[str, float]
    cleaning: CleaningReport


def load_training_frame(data: Path | None, limit: int | None) -> tuple[pd.DataFrame, str]:
    """The listings to learn from and a fingerprint of their source."""
    if data is None:
        frame = generate_listings(GENERATED_ROWS, seed=7)
        return frame.head(limit) if limit else frame, "generator:" + _sha256(
            Path(__file__).parent.parent / "producers" / "generator_params.json"
        )
    frame = read_listings_file(data)
    return frame.head(limit) if limit else frame, _sha256(data)


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns, typed as the stream delivers them (numbers as float, text as str)."""
    out = frame.reindex(columns=list(FEATURE_FIELDS)).copy()
    for column in ("year", "odometer", "lat", "long"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    for column in out.columns.difference(["year", "odometer", "lat", "long"]):
        out[column] = out[column].astype("object").where(out[column].notna(), None)  # type: ignore[call-overload]
    return out


def evaluate(model: PriceModel, frame: pd.DataFrame, price: pd.Series) -> dict[str, float]:
    predicted = model.predict(model_input(frame))
    error = predicted - price.to_numpy()
    total = float(((price - price.mean()) ** 2).sum())
    return {
        "mae": float(np.abs(error).mean()),
        "median_ae": float(np.median(np.abs(error))),
        "rmse": float(np.sqrt((error**2).mean())),
        "mape": float((np.abs(error) / price.to_numpy()).mean()),
        "r2": 1.0 - float((error**2).sum()) / total,
        "test_rows": float(len(price)),
    }


def train(
    settings: Settings,
    data: Path | None = None,
    limit: int | None = None,
    params: TrainParams | None = None,
    promote: bool = True,
) -> TrainResult:
    """Clean, split 80/10/10, fit with early stopping on the 10% validation part, log, register."""
    params = params or TrainParams()
    started = time.monotonic()
    raw, data_hash = load_training_frame(data, limit)
    clean, report = usable_labels(raw)
    log.info("cleaning: %d rows in, %d usable (%s)", report.rows_in, report.rows_out, report.removed)
    fit_part, test = train_test_split(clean, test_size=0.1, random_state=params.seed)
    train_part, valid = train_test_split(fit_part, test_size=1 / 9, random_state=params.seed)
    price = lambda f: pd.to_numeric(f["price"]).astype("float64")  # noqa: E731
    log.info("training on %d rows, validating on %d, testing on %d…", len(train_part), len(valid), len(test))
    model = PriceModel(params).fit(model_input(train_part), price(train_part), valid=(model_input(valid), price(valid)))
    metrics = evaluate(model, test, price(test)) | {"best_iteration": float(model.best_iteration_)}
    log.info(
        "trained in %.1f s: MAE %.0f, RMSE %.0f, R² %.3f",
        time.monotonic() - started,
        metrics["mae"],
        metrics["rmse"],
        metrics["r2"],
    )
    return log_and_register(settings, model, train_part, metrics, report, data_hash, data, params, promote)


def log_and_register(
    settings: Settings,
    model: PriceModel,
    train_part: pd.DataFrame,
    metrics: dict[str, float],
    report: CleaningReport,
    data_hash: str,
    data: Path | None,
    params: TrainParams,
    promote: bool,
) -> TrainResult:
    client = configure(settings)
    example = model_input(train_part.head(5))
    with mlflow.start_run() as run:
        mlflow.log_params(asdict(params) | {"data": str(data) if data else "generator"})
        mlflow.log_metrics(metrics)
        mlflow.set_tags({"data_sha256": data_hash, "git_commit": _git_commit()})
        mlflow.log_dict(
            {"rows_in": report.rows_in, "rows_out": report.rows_out, "removed": report.removed}, "cleaning_report.json"
        )
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            registered_model_name=settings.model_name,
            pip_requirements=PIP_REQUIREMENTS,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )
    version = int(info.registered_model_version)
    if promote:
        client.set_registered_model_alias(settings.model_name, settings.champion_alias, str(version))
        log.info("registered %s version %d as @%s", settings.model_name, version, settings.champion_alias)
    return TrainResult(version=version, run_id=run.info.run_id, metrics=metrics, cleaning=report)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


assert set(FEATURE_FIELDS) <= set(CRAIGSLIST_COLUMNS)

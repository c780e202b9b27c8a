"""Train a price model, log it to MLflow with its signature, register it and crown it or name it challenger."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from pricemyride.datafile import read_listings_file
from pricemyride.events import FEATURE_FIELDS
from pricemyride.settings import Settings
from producers.generator import generate_listings
from training.cleaning import CleaningReport, clean
from training.model import PriceModel, TrainParams
from training.registry import configure
from training.splits import split_by_car, split_by_car_and_time

log = logging.getLogger(__name__)
GENERATED_ROWS = 20_000
REFERENCE_ROWS = 5_000
PIP_REQUIREMENTS = ["xgboost-cpu==3.2.0", "scikit-learn==1.7.2", "pandas==2.3.3"]
NUMERIC_INPUTS = ("year", "odometer", "lat", "long")


@dataclass(frozen=True)
class Splits:
    """Train (fit), valid (early stopping), calibration (the range) and test (held out by car and time)."""

    train: pd.DataFrame
    valid: pd.DataFrame
    calibration: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("train", "valid", "calibration", "test")}


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced."""

    version: int
    run_id: str
    metrics: dict[str, float]
    cleaning: CleaningReport
    promoted: bool


def load_training_frame(data: Path | None, limit: int | None) -> tuple[pd.DataFrame, str]:
    """The listings to learn from and a fingerprint of their source."""
    if data is None:
        frame = generate_listings(GENERATED_ROWS, seed=7)
        params_file = Path(__file__).resolve().parent.parent / "producers" / "generator_params.json"
        return (frame.head(limit) if limit else frame), "generator:" + file_sha256(params_file)
    frame = read_listings_file(data)
    return (frame.head(limit) if limit else frame), file_sha256(data)


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns, typed as the stream delivers them (numbers as float, text as str)."""
    out = frame.reindex(columns=list(FEATURE_FIELDS)).copy()
    for column in NUMERIC_INPUTS:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    for column in out.columns.difference(list(NUMERIC_INPUTS)):
        out[column] = out[column].astype("object").where(out[column].notna(), None)  # type: ignore[call-overload]
    return out


def prices(frame: pd.DataFrame) -> pd.Series:
    return pd.to_numeric(frame["price"]).astype("float64")


def make_splits(frame: pd.DataFrame, seed: int = 42) -> Splits:
    pool, test = split_by_car_and_time(frame, seed=seed)
    rest, calibration = split_by_car(pool, 0.15, seed=seed)
    train, valid = split_by_car(rest, 0.12, seed=seed + 1)
    return Splits(train, valid, calibration, test)


def fit_model(splits: Splits, params: TrainParams) -> PriceModel:
    log.info("training on %s rows…", splits.sizes())
    return PriceModel(params).fit(
        model_input(splits.train),
        prices(splits.train),
        valid=(model_input(splits.valid), prices(splits.valid)),
        calibration=(model_input(splits.calibration), prices(splits.calibration)),
    )


def holdout_metrics(model: PriceModel, test: pd.DataFrame) -> dict[str, float]:
    from training.evaluate import quality_metrics

    predicted = model.predict_range(model_input(test))
    return quality_metrics(prices(test).to_numpy(), predicted)["overall"]


def train(
    settings: Settings,
    data: Path | None = None,
    limit: int | None = None,
    params: TrainParams | None = None,
    promote: bool = True,
) -> TrainResult:
    """Clean, split by car and time, fit with early stopping and a calibrated range, log and register."""
    params = params or TrainParams()
    started = time.monotonic()
    raw, data_hash = load_training_frame(data, limit)
    usable, report = clean(raw)
    log.info("cleaning: %d rows in, %d usable (%s)", report.rows_in, report.rows_out, report.removed)
    splits = make_splits(usable, params.seed)
    model = fit_model(splits, params)
    metrics = holdout_metrics(model, splits.test) | {"best_iteration": float(model.best_iteration_)}
    log.info(
        "trained in %.1f s: MAE %.0f, RMSE %.0f, R² %.3f, range coverage %.2f",
        time.monotonic() - started, metrics["mae"], metrics["rmse"], metrics["r2"], metrics["coverage"],
    )  # fmt: skip
    source = str(data) if data else "generator"
    files = [data] if data else []
    return log_and_register(settings, model, splits, metrics, report, raw, data_hash, source, params, promote, files)


def reference_sample(model: PriceModel, raw: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A few thousand listings as the stream delivers them, with the model's prices: the drift reference.

    Drawn from the raw rows (before cleaning), because the stream carries dirt and dealers' cross-posts
    too; a cleaned sample would make every live window look drifted. ``price`` is the asking price.
    """
    sample = raw.sample(n=min(REFERENCE_ROWS, len(raw)), random_state=seed)
    out = model_input(sample).reset_index(drop=True)
    out["price"] = pd.to_numeric(sample["price"], errors="coerce").to_numpy(dtype="float64")
    return pd.concat([out, model.predict_range(model_input(sample)).reset_index(drop=True)], axis=1)


def log_and_register(
    settings: Settings,
    model: PriceModel,
    splits: Splits,
    metrics: dict[str, float],
    report: CleaningReport,
    raw: pd.DataFrame,
    data_hash: str,
    source: str,
    params: TrainParams,
    promote: bool,
    files: Sequence[Path] = (),
) -> TrainResult:
    client = configure(settings)
    example = model_input(splits.train.head(5))
    with mlflow.start_run() as run:
        mlflow.log_params(asdict(params) | {"data": source} | {f"rows_{k}": v for k, v in splits.sizes().items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.set_tags(
            {
                "data_sha256": data_hash,
                "git_commit": git_commit(),
                "training_files": json.dumps([str(Path(f).resolve()) for f in files]),
            }
        )
        mlflow.log_dict(report.as_dict(), "cleaning_report.json")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reference.parquet"
            reference_sample(model, raw, params.seed).to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path="reference")
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
    alias = settings.champion_alias if promote else settings.challenger_alias
    client.set_registered_model_alias(settings.model_name, alias, str(version))
    log.info("registered %s version %d as @%s", settings.model_name, version, alias)
    return TrainResult(version=version, run_id=run.info.run_id, metrics=metrics, cleaning=report, promoted=promote)


def frame_sha256(frame: pd.DataFrame) -> str:
    """A fingerprint of a DataFrame's content (for data that is not one file)."""
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()

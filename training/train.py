"""Train a price model, log it to MLflow with its signature, register it and crown it or name it challenger."""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from pricemyride.errors import TrainingRefused, UsageError
from pricemyride.settings import Settings
from training import contracts, promotion
from training.cleaning import CleaningReport, clean
from training.data import Splits, clean_file, load_training_frame, make_splits, model_input, pooled, prices
from training.gate import check_margin, compare, judge
from training.limits import MIN_USABLE_ROWS
from training.metrics import quality_metrics
from training.model import PriceModel, TrainParams
from training.registry import configure
from training.slices import slice_quality
from training.sources import SOURCE

log = logging.getLogger(__name__)
REFERENCE_ROWS = 5_000
PIP_REQUIREMENTS = ["xgboost-cpu==3.2.0", "scikit-learn==1.7.2", "pandas==2.3.3"]


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced."""

    version: int
    run_id: str
    metrics: dict[str, float]
    cleaning: CleaningReport
    promoted: bool


def fit_model(splits: Splits, params: TrainParams) -> PriceModel:
    log.info("training on %s rows…", splits.sizes())
    return PriceModel(params).fit(
        model_input(splits.train),
        prices(splits.train),
        valid=(model_input(splits.valid), prices(splits.valid)),
        calibration=(model_input(splits.calibration), prices(splits.calibration)),
    )


def holdout_metrics(model: PriceModel, test: pd.DataFrame) -> dict[str, float]:
    predicted = model.predict_range(model_input(test))
    return quality_metrics(prices(test).to_numpy(), predicted)["overall"]


def check_params(params: TrainParams, limit: int | None) -> None:
    if params.max_rounds < 1:
        raise UsageError(f"max-rounds: expected at least 1 boosting round, got {params.max_rounds}")
    if limit is not None and limit < MIN_USABLE_ROWS:
        raise UsageError(f"limit: expected at least {MIN_USABLE_ROWS} rows (or no limit), got {limit}")


def require_rows(usable: pd.DataFrame, report: CleaningReport, source: Path | str | None = None) -> None:
    """Refuse to train on fewer than ``MIN_USABLE_ROWS`` usable listings, saying what cleaning removed."""
    if len(usable) < MIN_USABLE_ROWS:
        raise TrainingRefused(
            f"{source or 'training data'}: expected at least {MIN_USABLE_ROWS} usable labelled listings, got "
            f"{len(usable)} of {report.rows_in} (removed: {report.removed}); give more rows (--limit, --data)"
        )


def require_parts(splits: Splits, source: Path | str | None = None) -> None:
    """Refuse a split with an empty part: too few different cars (identical car fields count as one)."""
    sizes = splits.sizes()
    if min(sizes.values()) < 1:
        raise TrainingRefused(
            f"{source or 'training data'}: expected listings of enough different cars to fill the train, valid, "
            f"calibration and test parts, got {sizes} (listings with the same car fields are one car)"
        )


def train(
    settings: Settings,
    data: Path | None = None,
    limit: int | None = None,
    params: TrainParams | None = None,
    promote: bool | None = None,
    margin: float | None = None,
    pool: Path | None = None,
) -> TrainResult:
    """Clean, split by car and time, fit with early stopping and a calibrated range, register as challenger.

    Then ``promote=None`` runs the promotion gate (the retrain flow's rule), ``True`` crowns it regardless,
    ``False`` leaves it a challenger. ``pool``: a file of another year whose usable rows join the training
    part only (validation, calibration and the held-out test stay ``data``'s)."""
    params = params or TrainParams()
    check_params(params, limit)
    margin = check_margin(settings.promotion_margin if margin is None else margin)
    started = time.monotonic()
    raw, data_hash = load_training_frame(data, limit)
    usable, report = clean(raw)
    log.info("cleaning: %d rows in, %d usable (%s)", report.rows_in, report.rows_out, report.removed)
    require_rows(usable, report, data)
    splits = pooled(make_splits(usable, params.seed), clean_file(pool))
    require_parts(splits, data)
    model = fit_model(splits, params)
    metrics = holdout_metrics(model, splits.test) | {"best_iteration": float(model.best_iteration_)}
    log.info(
        "trained in %.1f s: MAE %.0f, RMSE %.0f, R² %.3f, range coverage %.2f",
        time.monotonic() - started, metrics["mae"], metrics["rmse"], metrics["r2"], metrics["coverage"],
    )  # fmt: skip
    source = (str(data) if data else "generator") + (f" + {pool}" if pool else "")
    # training_files is what the retrain service trains on again: the file itself. The pool is a choice of
    # this command (recorded in the run's "data" parameter); the retrain flow does not pool.
    result = log_and_register(settings, model, splits, metrics, report, raw, data_hash, source, params,
                              [data] if data else [])  # fmt: skip
    return replace(result, promoted=crown(settings, result.version, model, splits, promote, margin))


def crown(settings: Settings, version: int, model: PriceModel, splits: Splits, promote: bool | None,
          margin: float) -> bool:  # fmt: skip
    """Promote ``version`` as asked: through the gate (None), explicitly (True) or not at all (False)."""
    if promote is False:
        return False
    if promote:
        promotion.promote(settings, version, "promoted explicitly (pricemyride train --promote)")
        return True
    # a file's ``source`` column names where its rows were collected, not a listing site: the per-site check
    # is the retrain flow's, on stored listings
    test = splits.test.drop(columns=SOURCE, errors="ignore")
    comparison = compare(settings, model, test, prices(splits.train))
    return judge(settings, version, comparison, margin).promote


def reference_sample(model: PriceModel, raw: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A few thousand listings as the stream delivers them, with the model's prices: the drift reference.

    Drawn from the raw rows (before cleaning), because the stream carries dirt and dealers' cross-posts
    too; a cleaned sample would make every live window look drifted. ``price`` is the asking price.
    """
    sample = raw.sample(n=min(REFERENCE_ROWS, len(raw)), random_state=seed)
    out = model_input(sample).reset_index(drop=True)
    out["price"] = pd.to_numeric(sample["price"], errors="coerce").to_numpy(dtype="float64")
    return pd.concat([out, model.predict_range(model_input(sample)).reset_index(drop=True)], axis=1)


def log_reference(sample: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / contracts.REFERENCE_FILE
        sample.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=contracts.REFERENCE_DIR)


def register_model(settings: Settings, model: PriceModel, example: pd.DataFrame) -> int:
    """Log the model with its signature and input example in the active run; its registered version."""
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
        registered_model_name=settings.model_name,
        pip_requirements=PIP_REQUIREMENTS,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    )
    return int(info.registered_model_version)


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
    files: Sequence[Path] = (),
) -> TrainResult:
    """Log the run (params, held-out metrics, tags, cleaning report, drift reference) and register the model
    as ``@challenger``; the contract of what a version carries is ``training.contracts``."""
    client = configure(settings)
    with mlflow.start_run() as run:
        mlflow.log_params(asdict(params) | {"data": source} | {f"rows_{k}": v for k, v in splits.sizes().items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        trained_on = json.dumps([str(Path(f).resolve()) for f in files])
        mlflow.set_tags({contracts.TAG_DATA_SHA256: data_hash, contracts.TAG_GIT_COMMIT: git_commit(),
                         contracts.TAG_TRAINING_FILES: trained_on})  # fmt: skip
        mlflow.log_dict(report.as_dict(), contracts.CLEANING_REPORT)
        mlflow.log_dict({"slices": slice_quality(model, splits.test)}, contracts.QUALITY_SLICES)
        log_reference(reference_sample(model, raw, params.seed))
        version = register_model(settings, model, model_input(splits.train.head(5)))
    client.set_registered_model_alias(settings.model_name, settings.challenger_alias, str(version))
    log.info("registered %s version %d as @%s", settings.model_name, version, settings.challenger_alias)
    return TrainResult(version=version, run_id=run.info.run_id, metrics=metrics, cleaning=report, promoted=False)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()

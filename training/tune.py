"""`pricemyride tune`: a reproducible hyperparameter search on validation data, never the test part.

Optuna's TPE sampler, seeded, over the XGBoost settings of ``TrainParams``, the weight of the masked
training copies and — when a file of another
year is given — whether pooling it into the training part helps. Each trial fits on the training part
(early stopping on the validation part) and is scored by its MAE on the validation part at every
information level (``training.levels.LEVELS``), so a setting that prices only complete listings well does
not win. The test part is not touched; ``pricemyride evaluate`` reports on it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import optuna
import pandas as pd

from training.cleaning import clean
from training.data import Splits, clean_file, load_training_frame, make_splits, model_input, pooled, prices
from training.levels import LEVELS, at_level
from training.model import PriceModel, TrainParams
from training.train import fit_model, require_parts, require_rows

log = logging.getLogger(__name__)
SEED: Final = 17


def validation_mae(model: PriceModel, valid: pd.DataFrame) -> float:
    """Mean over the information levels of the MAE on the validation part blanked to that level."""
    price = prices(valid).to_numpy()
    errors = [np.abs(model.predict(model_input(at_level(valid, level))) - price).mean() for level in LEVELS]
    return float(np.mean(errors))


def trial_params(trial: optuna.Trial, max_rounds: int) -> TrainParams:
    return TrainParams(
        max_rounds=max_rounds,
        learning_rate=trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        max_depth=trial.suggest_int("max_depth", 4, 12),
        min_child_weight=trial.suggest_float("min_child_weight", 1.0, 50.0, log=True),
        subsample=trial.suggest_float("subsample", 0.6, 1.0),
        colsample_bytree=trial.suggest_float("colsample_bytree", 0.3, 1.0),
        reg_lambda=trial.suggest_float("reg_lambda", 0.1, 20.0, log=True),
        masked_weight=trial.suggest_categorical("masked_weight", [0.25, 0.5, 1.0]),
    )


def objective(splits: Splits, pool: pd.DataFrame | None, max_rounds: int) -> Any:
    def score(trial: optuna.Trial) -> float:
        params = trial_params(trial, max_rounds)
        use_pool = pool is not None and trial.suggest_categorical("pool", [False, True])
        model = fit_model(pooled(splits, pool if use_pool else None), params)
        trial.set_user_attr("best_iteration", model.best_iteration_)
        return validation_mae(model, splits.valid)

    return score


def tune(data: Path | None, trials: int, max_rounds: int = 2000, pool: Path | None = None,
         limit: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the search; the best settings and every trial, as the report's JSON."""
    started = time.monotonic()
    raw, data_hash = load_training_frame(data, limit)
    usable, report = clean(raw)
    require_rows(usable, report, data)
    splits = make_splits(usable, TrainParams().seed)
    require_parts(splits, data)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=SEED))
    study.enqueue_trial({k: v for k, v in asdict(TrainParams()).items() if k in TUNED} | {"pool": False})
    study.optimize(objective(splits, clean_file(pool), max_rounds), n_trials=trials, show_progress_bar=True)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": str(data) if data else "generator", "data_sha256": data_hash,
        "pool": str(pool) if pool else None, "trials": trials, "max_rounds": max_rounds, "sampler_seed": SEED,
        "objective": "validation MAE, mean over information levels " + ", ".join(LEVELS),
        "default": study.trials[0].value, "best": study.best_value, "best_params": study.best_params,
        "all": [{"number": t.number, "value": t.value, "params": t.params, **t.user_attrs} for t in study.trials],
        "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip


TUNED: Final = ("learning_rate", "max_depth", "min_child_weight", "subsample", "colsample_bytree", "reg_lambda",
                "masked_weight")  # fmt: skip


def write_tuning(result: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "tuning.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path

"""The price model: listing features → XGBoost on log price, one object from raw fields to dollars."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin

from training.features import ListingFeatures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainParams:
    """XGBoost settings; early stopping watches a validation part of the training data only."""

    max_rounds: int = 800
    learning_rate: float = 0.05
    max_depth: int = 8
    min_child_weight: float = 3.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    early_stopping_rounds: int = 50
    seed: int = 42

    def xgb_params(self) -> dict[str, Any]:
        return {
            "objective": "reg:squarederror",
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "tree_method": "hist",
            "max_cat_to_onehot": 1,
            "seed": self.seed,
            "nthread": 2,
        }


class LogProgress(xgb.callback.TrainingCallback):  # type: ignore[misc]
    """Log the validation error every ``every`` boosting rounds, so long training shows progress."""

    def __init__(self, every: int = 100) -> None:
        self.every = every

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, dict[str, Any]]) -> bool:
        if epoch % self.every == 0 and evals_log:
            last = {name: round(metrics["rmse"][-1], 4) for name, metrics in evals_log.items() if "rmse" in metrics}
            log.info("round %d: rmse(log price) %s", epoch, last)
        return False


class PriceModel(BaseEstimator, RegressorMixin):  # type: ignore[misc]
    """Raw listing DataFrame in, fair price in dollars out."""

    def __init__(self, params: TrainParams | None = None) -> None:
        self.params = params

    def fit(self, frame: pd.DataFrame, price: pd.Series, valid: tuple[pd.DataFrame, pd.Series] | None = None) -> Self:
        params = self.params or TrainParams()
        self.features_ = ListingFeatures().fit(frame)
        train = xgb.DMatrix(self.features_.transform(frame), label=np.log(price), enable_categorical=True)
        evals = [(train, "train")]
        if valid is not None:
            evals.append(
                (
                    xgb.DMatrix(self.features_.transform(valid[0]), label=np.log(valid[1]), enable_categorical=True),
                    "valid",
                )
            )
        self.booster_ = xgb.train(
            params.xgb_params(),
            train,
            num_boost_round=params.max_rounds,
            evals=evals,
            early_stopping_rounds=params.early_stopping_rounds if valid is not None else None,
            verbose_eval=False,
            callbacks=[LogProgress()],
        )
        self.best_iteration_ = int(getattr(self.booster_, "best_iteration", params.max_rounds - 1))
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        matrix = xgb.DMatrix(self.features_.transform(frame), enable_categorical=True)
        log_price = self.booster_.predict(matrix, iteration_range=(0, self.best_iteration_ + 1))
        return np.exp(log_price.astype("float64"))

"""The price model: listing features → XGBoost with a Gamma objective, and a calibrated 80% range.

Why Gamma (log link, deviance loss): errors on car prices are multiplicative (a $2,000 miss matters on
a $5,000 car, not on a $60,000 one) and prices are right-skewed, which is what a squared error on log
price also handles — but that predicts the geometric mean and underprices expensive cars. Gamma
regression keeps the log link and predicts the mean. On the validation and calibration parts (never the
test part) it beat squared error on log price on both MAE and RMSE.

The range is split-conformal: the 10th and 90th percentiles of log residuals on a calibration part the
trees never saw, per band of predicted price (Mondrian), so each band gets the width it needs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin
from tqdm import tqdm

from training.features import CATEGORICAL, FEATURES, ListingFeatures, records_of

log = logging.getLogger(__name__)
COVERAGE: Final = 0.80
BAND_EDGES: Final = (5_000.0, 15_000.0, 30_000.0)  # predicted price bands for the range
MIN_BAND_ROWS: Final = 150


@dataclass(frozen=True)
class TrainParams:
    """XGBoost settings; early stopping watches a validation part of the training data only."""

    max_rounds: int = 2000
    learning_rate: float = 0.04
    max_depth: int = 10
    min_child_weight: float = 10.0
    subsample: float = 0.8
    colsample_bytree: float = 0.5
    reg_lambda: float = 2.0
    max_cat_threshold: int = 32
    early_stopping_rounds: int = 100
    seed: int = 42

    def xgb_params(self) -> dict[str, Any]:
        return {
            "objective": "reg:gamma",
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "tree_method": "hist",
            "max_cat_to_onehot": 1,
            "max_cat_threshold": self.max_cat_threshold,
            "seed": self.seed,
            "nthread": 2,
        }


class TrainingProgress(xgb.callback.TrainingCallback):  # type: ignore[misc]
    """Boosting rounds as a progress bar on a terminal; elsewhere a log line every ``every`` rounds."""

    def __init__(self, total: int, every: int = 100) -> None:
        self.every = every
        self.bar = tqdm(total=total, unit="round", desc="training", mininterval=0.5) if sys.stderr.isatty() else None

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, dict[str, Any]]) -> bool:
        last = {
            f"{name} {metric}": round(values[-1], 4) for name, m in evals_log.items() for metric, values in m.items()
        }
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(last, refresh=False)
        elif epoch % self.every == 0 and last:
            log.info("round %d: %s", epoch, last)
        return False

    def after_training(self, model: Any) -> Any:
        if self.bar is not None:
            self.bar.close()
        return model


def price_band(price: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(BAND_EDGES), price, side="right")


class PriceModel(BaseEstimator, RegressorMixin):  # type: ignore[misc]
    """Raw listing DataFrame in, fair price in dollars out (``predict_range`` adds the 80% range)."""

    def __init__(self, params: TrainParams | None = None) -> None:
        self.params = params

    def fit(
        self,
        frame: pd.DataFrame,
        price: pd.Series,
        valid: tuple[pd.DataFrame, pd.Series] | None = None,
        calibration: tuple[pd.DataFrame, pd.Series] | None = None,
    ) -> Self:
        params = self.params or TrainParams()
        self.features_ = ListingFeatures().fit(frame)
        train = self._matrix(frame, price)
        evals = [(train, "train")] + ([(self._matrix(*valid), "valid")] if valid is not None else [])
        self.booster_ = xgb.train(
            params.xgb_params(),
            train,
            num_boost_round=params.max_rounds,
            evals=evals,
            early_stopping_rounds=params.early_stopping_rounds if valid is not None else None,
            verbose_eval=False,
            callbacks=[TrainingProgress(params.max_rounds)],
        )
        self.best_iteration_ = int(getattr(self.booster_, "best_iteration", params.max_rounds - 1))
        self.calibrate(*(calibration if calibration is not None else (frame, price)))
        return self

    def calibrate(self, frame: pd.DataFrame, price: pd.Series) -> Self:
        """Per predicted-price band, the log-residual quantiles that give ``COVERAGE``."""
        fair = self.predict(frame)
        residual = np.log(price.to_numpy(dtype="float64")) - np.log(fair)
        lo, hi = (1 - COVERAGE) / 2, 1 - (1 - COVERAGE) / 2
        self.global_offsets_ = tuple(np.quantile(residual, [lo, hi]))
        bands = price_band(fair)
        self.band_offsets_ = {
            int(b): tuple(np.quantile(residual[bands == b], [lo, hi]))
            for b in np.unique(bands)
            if (bands == b).sum() >= MIN_BAND_ROWS
        }
        return self

    def _matrix(self, frame: pd.DataFrame, price: pd.Series | None = None) -> xgb.DMatrix:
        """Training's input (categories from the pandas categoricals); serving reads ``features_.matrix``,
        which a model test holds equal to it."""
        label = None if price is None else price.to_numpy(dtype="float64")
        return xgb.DMatrix(self.features_.transform(frame), label=label, enable_categorical=True)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Fair prices for a DataFrame of listing columns: an adapter over the records path."""
        return self._fair(records_of(frame))

    def _fair(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        fair = self.booster_.predict(self._dmatrix(self.features_.matrix(records)),
                                     iteration_range=(0, self.best_iteration_ + 1))  # fmt: skip
        return np.asarray(fair, dtype="float64")

    def use_threads(self, threads: int) -> Self:
        """Threads for building the input and predicting (training's setting otherwise). Stream workers use 1:
        with two OpenMP threads per process on shared cores, every small batch waited at thread barriers."""
        self.predict_threads_ = threads
        self.booster_.set_param({"nthread": threads})
        return self

    def _dmatrix(self, data: np.ndarray) -> xgb.DMatrix:
        types = ["c" if name in CATEGORICAL else "q" for name in FEATURES]
        return xgb.DMatrix(data, feature_names=list(FEATURES), feature_types=types, enable_categorical=True,
                           nthread=getattr(self, "predict_threads_", -1))  # fmt: skip

    def predict_range(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Fair price and its 80% range (``price_low``, ``price_high``) per row: an adapter over the records path."""
        ranges = self.price_ranges(records_of(frame))
        return pd.DataFrame(ranges, columns=["predicted_price", "price_low", "price_high"], index=frame.index)

    def price_ranges(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Per validated listing (its fields as a mapping), the fair price and its 80% range: an (n, 3) array.
        The one prediction path — the stream's, with no DataFrame on the way (``ListingFeatures.matrix``)."""
        return self._ranges(self._fair(records))

    def _ranges(self, fair: np.ndarray) -> np.ndarray:
        bands = price_band(fair)
        offsets = np.array([self.band_offsets_.get(int(b), self.global_offsets_) for b in bands]).reshape(-1, 2)
        return np.column_stack([fair, fair * np.exp(offsets[:, 0]), fair * np.exp(offsets[:, 1])])

    def contributions(self, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Per-feature contributions to the log of the price (tree SHAP, log link), one row per listing."""
        matrix = self._dmatrix(self.features_.matrix(records))
        values = self.booster_.predict(matrix, pred_contribs=True, iteration_range=(0, self.best_iteration_ + 1))
        return pd.DataFrame(values, columns=[*FEATURES, "bias"])

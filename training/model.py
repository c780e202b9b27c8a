"""The price model: listing features → XGBoost with a Gamma objective, and a calibrated 80% range.

Why Gamma (log link, deviance loss): errors on car prices are multiplicative (a $2,000 miss matters on
a $5,000 car, not on a $60,000 one) and prices are right-skewed, which is what a squared error on log
price also handles — but that predicts the geometric mean and underprices expensive cars. Gamma
regression keeps the log link and predicts the mean. On the validation and calibration parts (never the
test part) it beat squared error on log price on both MAE and RMSE.

Training sees partial listings: masked copies of the training rows (``training.levels``) teach the trees
to price a listing without a year or a model name from what it does say.

The range is normalized, Mondrian split-conformal (crepes' ``ConformalPredictiveSystem``): a small
difficulty model predicts how far off the price is likely to be for this listing (the absolute log
residual, learnt on the validation part), and the calibration part — every information level of it, which
the trees never saw — gives the 10th and 90th percentile of the log residual in units of that difficulty,
per information class and band of predicted price. crepes computes the table at fit time; scoring looks
it up (``_ranges``), which a model test holds equal to crepes' own prediction. So a listing that says
less, or a car that is harder to price, gets a wider range, and each class and band keeps its 80%.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

import numpy as np
import pandas as pd
import xgboost as xgb
from crepes import ConformalPredictiveSystem
from sklearn.base import BaseEstimator, RegressorMixin
from tqdm import tqdm

from training.features import CATEGORICAL, FEATURES, ListingFeatures, records_of
from training.levels import INFO_CLASSES, LEVELS, at_level, info_class, masked_copies

log = logging.getLogger(__name__)
COVERAGE: Final = 0.80
BAND_EDGES: Final = (5_000.0, 10_000.0, 20_000.0, 40_000.0)  # predicted price bands for the range
MIN_BIN_ROWS: Final = 100  # a Mondrian bin with fewer calibration rows uses its information class's figures
MIN_SIGMA: Final = 0.03  # the difficulty model's floor (log units)
DIFFICULTY_PARAMS: Final = {"objective": "reg:absoluteerror", "eta": 0.1, "max_depth": 4, "min_child_weight": 20,
                            "subsample": 0.8, "tree_method": "hist", "max_cat_to_onehot": 1, "nthread": 2}  # fmt: skip
DIFFICULTY_ROUNDS: Final = 100


@dataclass(frozen=True)
class TrainParams:
    """XGBoost settings; early stopping watches a validation part of the training data only."""

    max_rounds: int = 2000
    learning_rate: float = 0.04
    max_depth: int = 8
    min_child_weight: float = 10.0
    subsample: float = 0.8
    colsample_bytree: float = 0.5
    reg_lambda: float = 2.0
    max_cat_threshold: int = 32
    early_stopping_rounds: int = 100
    seed: int = 42
    masking: bool = True  # train on masked copies too (``training.levels.masked_copies``)
    masked_weight: float = 0.5  # each masked copy's weight against an original listing's 1

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


def mondrian_bins(classes: np.ndarray, fair: np.ndarray) -> np.ndarray:
    """The calibration bin of each listing: its information class and the band of its predicted price."""
    return classes * (len(BAND_EDGES) + 1) + price_band(fair)


def conformal_offsets(residual: np.ndarray, sigma: np.ndarray, bins: np.ndarray, count: int) -> np.ndarray:
    """Per bin 0 … count−1, the normalized residuals' (10th, 90th) percentiles, computed by crepes; NaN for
    bins with fewer than ``MIN_BIN_ROWS`` calibration rows."""
    cps = ConformalPredictiveSystem().fit(residual, sigmas=sigma, bins=bins)
    lo, hi = 100 * (1 - COVERAGE) / 2, 100 * (1 + COVERAGE) / 2
    table = np.full((count, 2), np.nan)
    present = np.array([b for b in range(count) if (bins == b).sum() >= MIN_BIN_ROWS], dtype=np.int64)
    with warnings.catch_warnings():  # crepes warns of bins too small for a percentile: those stay NaN
        warnings.simplefilter("ignore", UserWarning)
        if len(present):
            table[present] = cps.predict(np.zeros(len(present)), sigmas=np.ones(len(present)), bins=present,
                                         lower_percentiles=lo, higher_percentiles=hi, smoothing=False)  # fmt: skip
    table[~np.isfinite(table)] = np.nan  # crepes' ±inf: too few rows for the percentile
    return table


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
        train = self._matrix(*self._masked(frame, price, params, params.seed))
        train.set_weight(np.r_[np.ones(len(frame)), np.full(train.num_row() - len(frame), params.masked_weight)])
        valid = self._masked(*valid, params, params.seed + 1) if valid is not None else None
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
        self.fit_difficulty(*(valid if valid is not None else (frame, price)), seed=params.seed)
        self.calibrate(*(calibration if calibration is not None else (frame, price)))
        return self

    @staticmethod
    def _masked(
        frame: pd.DataFrame, price: pd.Series, params: TrainParams, seed: int
    ) -> tuple[pd.DataFrame, pd.Series]:
        if not params.masking:
            return frame, price
        both = masked_copies(frame.assign(_price=price.to_numpy()), seed)
        return both.drop(columns="_price"), both["_price"]

    def fit_difficulty(self, frame: pd.DataFrame, price: pd.Series, seed: int) -> Self:
        """The difficulty model: how far off (absolute log residual) the price is likely to be per listing."""
        records = records_of(frame)
        residual = np.abs(np.log(price.to_numpy(dtype="float64")) - np.log(self._fair(records)))
        matrix = self._dmatrix(self.features_.matrix(records))
        matrix.set_label(residual)
        self.difficulty_ = xgb.train(DIFFICULTY_PARAMS | {"seed": seed}, matrix, num_boost_round=DIFFICULTY_ROUNDS)
        return self

    def calibrate(self, frame: pd.DataFrame, price: pd.Series) -> Self:
        """The range's table: per information class and predicted-price band, the normalized log-residual
        percentiles that give ``COVERAGE``, on ``frame`` at every information level (``LEVELS``)."""
        levels = pd.concat([at_level(frame, level) for level in LEVELS], ignore_index=True)
        label = np.tile(price.to_numpy(dtype="float64"), len(LEVELS))
        records = records_of(levels)
        fair, sigma = self._fair_and_sigma(records)
        residual, classes = np.log(label) - np.log(fair), info_class(records)
        bands = len(BAND_EDGES) + 1
        by_bin = conformal_offsets(residual, sigma, mondrian_bins(classes, fair), len(INFO_CLASSES) * bands)
        by_class = conformal_offsets(residual, sigma, classes, len(INFO_CLASSES))
        overall = conformal_offsets(residual, sigma, np.zeros(len(residual), dtype=np.int64), 1)[0]
        fallback = np.where(np.isnan(by_class), overall, by_class)
        self.range_table_ = np.where(np.isnan(by_bin), np.repeat(fallback, bands, axis=0), by_bin)
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
        return self._fair_and_sigma(records, difficulty=False)[0]

    def _fair_and_sigma(
        self, records: Sequence[Mapping[str, Any]], difficulty: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fair prices and, with ``difficulty``, each listing's difficulty (one input matrix for both).

        ``inplace_predict`` on the float array: no DMatrix to build per batch (the trees read category codes
        as ``matrix`` writes them; a model test holds this equal to training's pandas input)."""
        matrix = self.features_.matrix(records)
        if not len(matrix):
            return np.empty(0), np.empty(0)
        fair = self.booster_.inplace_predict(matrix, iteration_range=(0, self.best_iteration_ + 1))
        fair = np.asarray(fair, dtype="float64")
        if not difficulty:
            return fair, np.ones_like(fair)
        sigma = np.asarray(self.difficulty_.inplace_predict(matrix), dtype="float64")
        return fair, np.maximum(sigma, MIN_SIGMA)

    def use_threads(self, threads: int) -> Self:
        """Threads for building the input and predicting (training's setting otherwise). Stream workers use 1:
        with two OpenMP threads per process on shared cores, every small batch waited at thread barriers."""
        self.predict_threads_ = threads
        self.booster_.set_param({"nthread": threads})
        self.difficulty_.set_param({"nthread": threads})
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
        fair, sigma = self._fair_and_sigma(records)
        return self._ranges(fair, sigma, info_class(records))

    def _ranges(self, fair: np.ndarray, sigma: np.ndarray, classes: np.ndarray) -> np.ndarray:
        offsets = self.range_table_[mondrian_bins(classes, fair)].reshape(-1, 2)
        return np.column_stack([fair, fair * np.exp(sigma * offsets[:, 0]), fair * np.exp(sigma * offsets[:, 1])])

    def contributions(self, records: Sequence[Mapping[str, Any]], approximate: bool = False) -> pd.DataFrame:
        """Per-feature contributions to the log of the price (log link), one row per listing: exact tree SHAP,
        or with ``approximate`` the path attribution (Saabas), which also adds up to the price, ~15x cheaper."""
        matrix = self._dmatrix(self.features_.matrix(records))
        values = self.booster_.predict(matrix, pred_contribs=True, approx_contribs=approximate,
                                       iteration_range=(0, self.best_iteration_ + 1))  # fmt: skip
        return pd.DataFrame(values, columns=[*FEATURES, "bias"])

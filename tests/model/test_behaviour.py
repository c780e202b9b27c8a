"""Model tests on real listings: direction and invariance, the range, and the baselines it must beat."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from crepes import ConformalPredictiveSystem

from pricemyride.errors import InvalidListing
from pricemyride.listing import FEATURE_FIELDS, Listing
from pricemyride.parsing import parse_listing
from producers.replay import row_event
from training.cleaning import clean
from training.data import Splits, load_training_frame, make_splits, model_input, prices
from training.evaluate import evaluate
from training.features import records_of
from training.levels import LEVELS, at_level, info_class
from training.model import MIN_BIN_ROWS, PriceModel, TrainParams, mondrian_bins
from training.train import fit_model

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("PRICEMYRIDE_TEST_DATA_DIR", ROOT.parent / "shared" / "data")) / "craigslist_2021.csv"
CAR = {
    "region": "chicago", "year": 2015.0, "manufacturer": "toyota", "model": "camry le", "condition": "good",
    "cylinders": "4 cylinders", "fuel": "gas", "odometer": 80_000.0, "title_status": "clean",
    "transmission": "automatic", "drive": "fwd", "size": "mid-size", "type": "sedan", "paint_color": "white",
    "state": "il", "lat": 41.88, "long": -87.63, "posting_date": "2021-04-20T12:00:00-0500",
}  # fmt: skip


@pytest.fixture(scope="module")
def splits() -> Splits:
    """The real 2021 listings, cleaned and split once for the module (time-ordered, car-separated)."""
    if not DATA.is_file():
        pytest.fail(f"expected the real Craigslist listings at {DATA} (set PRICEMYRIDE_TEST_DATA_DIR)")
    raw, _ = load_training_frame(DATA, None)
    return make_splits(clean(raw)[0])


@pytest.fixture(scope="module")
def model(splits: Splits) -> PriceModel:
    return fit_model(splits, TrainParams(max_rounds=400))


def price(fitted: PriceModel, changes: dict[str, object] | None = None) -> float:
    return float(fitted.predict(model_input(pd.DataFrame([CAR | (changes or {})])))[0])


@pytest.mark.parametrize("car", [{}, {"manufacturer": "ford", "model": "f-150", "type": "pickup"},
                                 {"manufacturer": "honda", "model": "civic"}])  # fmt: skip
def test_more_miles_lower_price(model: PriceModel, car: dict[str, object]) -> None:
    low, mid, high = (price(model, car | {"odometer": miles}) for miles in (40_000, 120_000, 200_000))
    assert low > mid > high


def test_newer_higher_price(model: PriceModel) -> None:
    new, mid, old = (price(model, {"year": year}) for year in (2018.0, 2012.0, 2006.0))
    assert new > mid > old


def test_paint_colour_moves_the_price_little(model: PriceModel) -> None:
    base = price(model)
    for colour in ("black", "silver", "blue", "red"):
        assert abs(price(model, {"paint_color": colour}) / base - 1) < 0.10


def test_a_site_sending_only_the_basics_gets_a_sensible_price(model: PriceModel) -> None:
    basics = {k: CAR[k] for k in ("manufacturer", "model", "year", "odometer")}
    only = float(model.predict(model_input(pd.DataFrame([basics])))[0])
    assert 0.5 < only / price(model) < 2.0


def test_range_surrounds_the_fair_price(model: PriceModel) -> None:
    ranged = model.predict_range(model_input(pd.DataFrame([CAR, CAR | {"year": 2019.0}])))
    assert (ranged["price_low"] < ranged["predicted_price"]).all()
    assert (ranged["predicted_price"] < ranged["price_high"]).all()


def test_beats_both_baselines_on_a_held_out_split() -> None:
    report = evaluate(DATA)
    by_name = {entry["slice"]: entry for entry in report["slices"]}
    everything = by_name["all rows"]
    ours, median = everything["model"], everything["median_baseline"]
    assert ours["mae"] < median["mae"]
    assert ours["rmse"] < median["rmse"]
    assert everything["model_on_capstone_rows"]["rmse"] < everything["capstone"]["rmse"]
    site_lite = by_name["site-lite"]
    assert site_lite["model_on_capstone_rows"]["rmse"] < site_lite["capstone"]["rmse"]
    assert {"full", "no year", "no model name", "site-lite", "minimal", "$0k–5k", "$40k+"} <= set(by_name)


@pytest.fixture(scope="module")
def held_out(splits: Splits) -> pd.DataFrame:
    """A fixed sample of the test part (time-ordered, car-separated) the fixture's model never saw."""
    return splits.test


@pytest.mark.parametrize("level", list(LEVELS))
def test_the_range_keeps_its_80_percent_at_every_information_level(model: PriceModel, held_out: pd.DataFrame,
                                                                   level: str) -> None:  # fmt: skip
    ranged = model.predict_range(model_input(at_level(held_out, level)))
    asking = prices(held_out).to_numpy()
    inside = (asking >= ranged["price_low"].to_numpy()) & (asking <= ranged["price_high"].to_numpy())
    assert 0.74 <= inside.mean() <= 0.86, f"{level}: the 80% range covers {inside.mean():.1%} of {len(asking)}"


def test_a_listing_without_a_year_is_not_priced_low(model: PriceModel, held_out: pd.DataFrame) -> None:
    """Blank the year of held-out listings: the old model priced them −31% (median) on this test part and
    −54% on the issue's held-out samples; now within ±10%. (Its range's 80% is held by the coverage test.)"""
    asking = prices(held_out).to_numpy()
    fair = model.predict(model_input(at_level(held_out, "no year")))
    assert abs(np.median((fair - asking) / asking)) < 0.10


def test_the_range_widens_when_the_listing_says_less(model: PriceModel, held_out: pd.DataFrame) -> None:
    def relative_width(level: str) -> float:
        ranged = model.predict_range(model_input(at_level(held_out, level)))
        return float(np.median((ranged["price_high"] - ranged["price_low"]) / ranged["predicted_price"]))

    assert relative_width("full") < relative_width("no year")
    assert relative_width("full") < relative_width("minimal")


def test_without_a_year_more_miles_still_lower_the_price(model: PriceModel) -> None:
    low, high = (price(model, {"year": None, "odometer": miles}) for miles in (30_000, 180_000))
    assert low > high


def test_the_stream_range_is_crepes_own_prediction(model: PriceModel, splits: Splits, held_out: pd.DataFrame) -> None:
    """Scoring looks the range up in a table made at fit time; crepes, fitted here on the same calibration
    rows, predicts the very same range for every listing whose bin had enough calibration rows."""
    calibration = splits.calibration
    levels = pd.concat([at_level(model_input(calibration), level) for level in LEVELS], ignore_index=True)
    cal_records = records_of(levels)
    cal_fair, cal_sigma = model._fair_and_sigma(cal_records)
    cal_bins = mondrian_bins(info_class(cal_records), cal_fair)
    residual = np.log(np.tile(prices(calibration).to_numpy(), len(LEVELS))) - np.log(cal_fair)
    cps = ConformalPredictiveSystem().fit(residual, sigmas=cal_sigma, bins=cal_bins)
    records = records_of(model_input(at_level(held_out.head(400), "no model name")))
    fair, sigma = model._fair_and_sigma(records)
    bins = mondrian_bins(info_class(records), fair)
    usable = np.isin(bins, [b for b in np.unique(cal_bins) if (cal_bins == b).sum() >= MIN_BIN_ROWS])
    expected = cps.predict(np.log(fair[usable]), sigmas=sigma[usable], bins=bins[usable], lower_percentiles=10,
                           higher_percentiles=90, smoothing=False)  # fmt: skip
    np.testing.assert_allclose(np.log(model.price_ranges(records)[usable, 1:]), expected, rtol=1e-9)
    assert usable.mean() > 0.9
    assert np.isfinite(model.range_table_).all()


def test_the_fast_predict_path_gives_the_trees_the_same_values(model: PriceModel) -> None:
    """predict() hands xgboost category codes in a float array; the pandas frame path must agree exactly,
    including unseen categories, missing values and a negative longitude."""
    raw, _ = load_training_frame(DATA, None)
    frame = model_input(raw.head(500))
    frame.loc[frame.index[:5], "manufacturer"] = "never-seen-make"
    frame.loc[frame.index[5:10], ["model", "region", "state"]] = None
    via_pandas = model.booster_.predict(model._matrix(frame), iteration_range=(0, model.best_iteration_ + 1))
    assert model.predict(frame).tolist() == pytest.approx(via_pandas.tolist(), rel=1e-6)
    assert (frame["long"] < 0).any()


def stream_listings(raw: pd.DataFrame) -> list[Listing]:
    """Real rows as the stream delivers them: an event per row, through the listing contract."""
    now = datetime.now(UTC)
    out = []
    for i, row in enumerate(raw.to_dict("records")):
        with contextlib.suppress(InvalidListing):
            event = row_event({str(k): v for k, v in row.items()}, "test", str(i), now)
            out.append(parse_listing(json.dumps(event, default=str)))
    return out


def test_the_stream_path_prices_exactly_as_the_frame_path(model: PriceModel) -> None:
    """Serving reads validated listings without a DataFrame (``price_ranges``); on real rows — with unseen
    makes, missing fields, no posting date and a date that is another year in UTC — the trees get the very
    inputs training built (``transform``), and the DataFrame adapter gives the very same prices."""
    raw, _ = load_training_frame(DATA, None)
    listings = stream_listings(raw.head(2_000))
    listings[:5] = [x.model_copy(update={"manufacturer": "never-seen-make"}) for x in listings[:5]]
    listings[5:10] = [x.model_copy(update={"model": None, "region": None, "year": None}) for x in listings[5:10]]
    listings[10:15] = [x.model_copy(update={"posting_date": None, "odometer": None}) for x in listings[10:15]]
    new_year = datetime(2021, 1, 1, 3, tzinfo=timezone(timedelta(hours=5)))  # 2020-12-31 in UTC
    listings[15] = listings[15].model_copy(update={"posting_date": new_year})
    records = [x.__dict__ for x in listings]
    frame = pd.DataFrame({name: [getattr(x, name) for x in listings] for name in FEATURE_FIELDS})
    np.testing.assert_array_equal(model.features_.matrix(records), training_codes(model, frame))
    np.testing.assert_array_equal(model.price_ranges(records), model.predict_range(frame).to_numpy())
    assert len(listings) > 1_500


def training_codes(model: PriceModel, frame: pd.DataFrame) -> np.ndarray:
    """What training hands xgboost (``transform``'s pandas categoricals) as one float array of codes."""
    features = model.features_.transform(frame)
    columns = []
    for name in features.columns:
        column = features[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy().astype("float32")
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(column.to_numpy(dtype="float32"))
    return np.column_stack(columns)

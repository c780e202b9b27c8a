"""The built-in generator's listings look like the real market to the model: trained on them through the
training code path (no MLflow), it prices its own held-out part about as well as it prices real listings
(R² ≈ 0.79 on the Craigslist file)."""

from __future__ import annotations

import pytest

from training.cleaning import clean
from training.data import load_training_frame, make_splits
from training.model import TrainParams
from training.train import fit_model, holdout_metrics


@pytest.fixture(scope="module")
def metrics() -> dict[str, float]:
    raw, source = load_training_frame(None, None)
    assert source.startswith("generator:")
    usable, _ = clean(raw)
    params = TrainParams()
    splits = make_splits(usable, params.seed)
    return holdout_metrics(fit_model(splits, params), splits.test)


def test_the_model_prices_generated_listings_about_as_well_as_real_ones(metrics: dict[str, float]) -> None:
    assert metrics["rows"] > 2_000
    assert metrics["r2"] >= 0.75, f"generated listings: {metrics}"


def test_the_range_covers_about_80_percent_of_generated_prices(metrics: dict[str, float]) -> None:
    assert 0.7 < metrics["coverage"] < 0.9

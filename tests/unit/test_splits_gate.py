"""Honest splits, and the promotion gate's decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricemyride.errors import UsageError
from training.gate import decide
from training.splits import car_groups, split_by_car, split_by_car_and_time


def listings(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2021-04-01", periods=n, freq="h", tz="UTC").astype(str).to_series().reset_index(drop=True)
    dates[rng.random(n) < 0.3] = None
    frame = pd.DataFrame({
        "manufacturer": rng.choice(["ford", "honda", "kia"], n), "model": rng.choice(["a", "b"], n),
        "year": rng.integers(2005, 2020, n), "odometer": rng.integers(1, 40, n) * 1000, "posting_date": dates,
    })  # fmt: skip
    return pd.concat([frame, frame.sample(50, random_state=seed)], ignore_index=True)  # cross-posts


def test_no_car_is_on_both_sides_and_the_test_part_is_later() -> None:
    frame = listings(2_000)
    early, late = split_by_car_and_time(frame)
    assert not set(car_groups(early)) & set(car_groups(late))
    assert 0.1 < len(late) / len(frame) < 0.5
    early_dates = pd.to_datetime(early["posting_date"]).dropna()
    late_dates = pd.to_datetime(late["posting_date"]).dropna()
    assert early_dates.quantile(0.5) < late_dates.quantile(0.5)


def test_random_car_split_keeps_cars_whole() -> None:
    rest, part = split_by_car(listings(1_000, seed=1), 0.2)
    assert not set(car_groups(rest)) & set(car_groups(part))


def test_gate_promotes_only_a_clear_winner() -> None:
    assert decide(7, 900.0, 6, 1000.0, 0.05).promote
    rejected = decide(7, 990.0, 6, 1000.0, 0.05)
    assert not rejected.promote
    assert rejected.reason == "MAE 990 does not beat the champion's 1,000 by 5% (needs ≤ 950)"
    first = decide(1, 1234.0, None, None, 0.05)
    assert (first.promote, first.reason) == (True, "no champion this code can run")


def test_gate_refuses_a_model_no_better_than_the_median_price() -> None:
    refused = decide(1, 13_721.0, None, None, 0.02, naive_mae=9_000.0)
    assert not refused.promote
    assert refused.reason == "MAE 13,721 is no better than the median price's 9,000"
    assert decide(1, 3_500.0, None, None, 0.02, naive_mae=9_000.0).promote


@pytest.mark.parametrize(("coverage", "promoted"), [(0.70, False), (0.749, False), (0.75, True), (0.80, True),
                                                     (0.85, True), (0.86, False), (None, True)])  # fmt: skip
def test_gate_refuses_a_range_that_does_not_keep_its_80_percent(coverage: float | None, promoted: bool) -> None:
    decision = decide(2, 900.0, 1, 1000.0, 0.05, naive_mae=5_000.0, coverage=coverage)
    assert decision.promote is promoted
    assert decision.challenger_coverage == coverage
    if not promoted:
        assert decision.reason == f"80% range covers {coverage:.1%} of held-out prices; expected 75% … 85%"


@pytest.mark.parametrize("margin", [-0.1, 1.0, 2.5])
def test_gate_refuses_a_margin_outside_0_to_1(margin: float) -> None:
    with pytest.raises(UsageError, match=f"margin: expected a share of MAE 0 ≤ margin < 1 .*, got {margin}"):
        decide(1, 900.0, 0, 1000.0, margin)


class FailingRegistry:
    """An MLflow client whose registry answers with an error other than "not found"."""

    def __init__(self, code: int) -> None:
        self.code = code

    def get_model_version_by_alias(self, name: str, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        raise MlflowException("registry says no", error_code=self.code)


def test_a_failing_registry_is_not_taken_for_no_champion() -> None:
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, RESOURCE_DOES_NOT_EXIST

    from pricemyride.errors import ModelLoadFailed, ModelNotFound
    from pricemyride.settings import Settings
    from training.registry import champion_version

    with pytest.raises(ModelLoadFailed, match="got INTERNAL_ERROR: registry says no"):
        champion_version(FailingRegistry(INTERNAL_ERROR), Settings())  # type: ignore[arg-type]
    with pytest.raises(ModelNotFound, match="run `pricemyride train` first"):
        champion_version(FailingRegistry(RESOURCE_DOES_NOT_EXIST), Settings())  # type: ignore[arg-type]


def test_rescore_skips_a_stored_listing_the_contract_now_refuses(caplog: pytest.LogCaptureFixture) -> None:
    from training.rescore import stored_listings

    kept = stored_listings([({"id": "ok", "price": 9_000},), ({"id": "old", "price": 7_000_000},)])
    assert [listing.id for listing in kept] == ["ok"]
    assert "listing old breaks the contract now (price:" in caplog.text

"""One site cannot steer retraining (training.sources, the gate per source), on real listings.

The flooding scenario: a champion trained on the 2020 file prices stored 2021 listings from two sites; the
honest site sends its real asking prices, the flooding site sends other real listings at 3× their prices.
Without the guard the challenger is steered (it prices the honest site's cars far higher) and the gate's
per-source check refuses it; with the guard the flooding site is set aside and the challenger is not steered.
The figures are printed (``pytest -s``) and quoted in the README.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricemyride.datafile import read_listings_file
from pricemyride.policy import SourcePolicy
from training.cleaning import clean
from training.data import make_splits, model_input, prices
from training.gate import decide, per_source
from training.model import PriceModel, TrainParams
from training.sources import FAIR, SOURCE, guard_sources, share_caps
from training.train import fit_model

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("PRICEMYRIDE_TEST_DATA_DIR", ROOT.parent / "shared" / "data"))
PARAMS = TrainParams(max_rounds=150)


def trained(frame: pd.DataFrame) -> PriceModel:
    return fit_model(make_splits(frame), PARAMS)


@pytest.fixture(scope="module")
def stored() -> pd.DataFrame:
    """6,000 stored 2021 listings: 3,000 from an honest site, 3,000 from a site that floods 3× prices, each
    with the fair price a 2020 champion gave it."""
    champion = trained(clean(read_listings_file(DATA / "craigslist_2020.csv"))[0])
    listings = clean(read_listings_file(DATA / "craigslist_2021.csv"))[0].sample(6_000, random_state=3)
    listings = listings.assign(**{SOURCE: ["honest"] * 3_000 + ["flood"] * 3_000})
    listings[FAIR] = champion.predict(model_input(listings))
    listings.loc[listings[SOURCE] == "flood", "price"] *= 3
    return listings.reset_index(drop=True)


def honest_ratio(model: PriceModel, honest: pd.DataFrame) -> float:
    """Median of the model's price ÷ the asking price on the honest site's held-out listings."""
    return float(np.median(model.predict(model_input(honest)) / prices(honest).to_numpy()))


def test_a_flooding_site_is_set_aside_and_the_challenger_is_not_steered(stored: pd.DataFrame) -> None:
    guarded, report = guard_sources(stored, SourcePolicy())
    assert report.set_aside.keys() == {"flood"}
    assert report.set_aside["flood"] > 2.4
    assert set(guarded[SOURCE]) == {"honest"}

    splits = make_splits(stored)  # one split: the honest site's test cars are unseen by both models
    honest_test = splits.test.loc[splits.test[SOURCE] == "honest"]
    steered = fit_model(splits, PARAMS)
    clean_model = fit_model(replace(splits, train=guard_sources(splits.train, SourcePolicy())[0]), PARAMS)
    without_guard, with_guard = honest_ratio(steered, honest_test), honest_ratio(clean_model, honest_test)
    print(f"\n[flood] set aside: {report.set_aside}; kept {report.kept}; removed as outliers {report.outliers}")
    print(f"[flood] model price ÷ asking on the honest site's {len(honest_test)} held-out cars: without the guard "
          f"{without_guard:.2f}, with it {with_guard:.2f}")  # fmt: skip
    assert without_guard > 1.4, "the flood steers a challenger trained on everything"
    assert 0.8 < with_guard < 1.25


def test_the_gate_refuses_a_challenger_worse_on_one_source(stored: pd.DataFrame) -> None:
    splits = make_splits(stored)
    steered = trained(stored)
    test = splits.test
    price = prices(test).to_numpy()
    by_source = per_source(test, price, steered.predict(model_input(test)), test[FAIR].to_numpy())
    overall = float(np.abs(price - steered.predict(model_input(test))).mean())
    decision = decide(2, overall, 1, overall * 1.5, 0.02, by_source=by_source, policy=SourcePolicy())
    print(f"\n[flood] gate per source: {by_source}\n[flood] {decision.reason}")
    assert decision.promote is False
    assert "on source honest" in decision.reason


def test_the_share_cap_keeps_each_source_under_its_share() -> None:
    assert share_caps({"a": 1_000, "f": 5_000}, 0, 0.5) == {"f": 1_000}
    assert share_caps({"f": 5_000}, 2_000, 0.5) == {"f": 2_000}
    assert share_caps({"a": 100, "b": 100, "f": 5_000}, 0, 0.4) == {"f": 133}
    assert share_caps({"f": 5_000}, 0, 0.5) == {}, "one source alone is not capped"
    assert share_caps({"a": 400, "b": 600}, 0, 0.7) == {}
    assert share_caps({"f": 10_000, "a": 100, "b": 100}, 0, 0.3) == {"f": 100}, "0.3 of three: levelled"


@given(sizes=st.dictionaries(st.sampled_from("abcdefg"), st.integers(1, 50_000), min_size=1),
       others=st.integers(0, 50_000), share=st.floats(0.05, 1.0))  # fmt: skip
def test_a_capped_source_is_within_its_share_or_all_are_level(sizes: dict[str, int], others: int, share: float) -> None:
    caps = share_caps(sizes, others, share)
    kept = {s: min(n, caps.get(s, n)) for s, n in sizes.items()}
    total = others + sum(kept.values())
    assert all(caps[s] < sizes[s] for s in caps), "a cap only ever removes rows"
    if len(sizes) == 1 and others == 0:
        assert caps == {}
    elif max(kept.values()) > share * total + 1:  # over by more than rounding: only when nothing fits
        assert others == 0, (kept, others)
        assert len(set(kept.values())) == 1, kept
    if caps:  # the cap keeps as much as it can: one more row each would break the share
        limit = next(iter(caps.values()))
        assert (
            limit + 1 > share * (others + sum(min(n, limit + 1) for n in sizes.values()))
            or len(set(kept.values())) == 1
        )


def test_republications_outliers_and_caps_are_counted_per_source() -> None:
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({
        SOURCE: ["a"] * n + ["b"] * (3 * n),
        "price": rng.uniform(5_000, 30_000, 4 * n),
        "year": rng.integers(2000, 2020, 4 * n).astype(float),
        "odometer": rng.uniform(1_000, 200_000, 4 * n),
    })  # fmt: skip
    frame[FAIR] = frame["price"] * rng.lognormal(0, 0.1, 4 * n)
    frame.loc[3, "price"] = frame.loc[3, FAIR] * 50  # one wild price at source a
    copies = frame.loc[frame[SOURCE] == "b"].head(10)
    kept, report = guard_sources(pd.concat([frame, copies], ignore_index=True), SourcePolicy(max_share=0.5))
    assert report.republished == {"b": 10}
    assert report.outliers == {"a": 1}
    assert report.set_aside == {}
    assert report.kept["b"] <= report.kept["a"] + 1
    assert kept[SOURCE].value_counts()["b"] == report.kept["b"]


def test_files_do_not_count_against_a_site_and_a_lone_site_is_not_capped() -> None:
    rng = np.random.default_rng(2)
    site = pd.DataFrame({SOURCE: "site", "price": rng.uniform(5_000, 30_000, 900), "year": 2015.0})
    site[FAIR] = site["price"]
    files = pd.DataFrame({SOURCE: "file:old.csv", "price": rng.uniform(5_000, 30_000, 100), "year": 2012.0,
                          FAIR: np.nan})  # fmt: skip
    frame = pd.concat([site, files], ignore_index=True)
    kept, report = guard_sources(frame, SourcePolicy(max_share=0.3))
    assert report.capped == {}
    assert len(kept) == len(frame)
    second = site.head(100).assign(**{SOURCE: "other", "year": 2016.0})
    _, report = guard_sources(pd.concat([frame, second], ignore_index=True), SourcePolicy(max_share=0.5))
    assert report.kept["site"] == 100, "two sites at 0.5: the larger is sampled down to the other's size"
    assert report.kept["file:old.csv"] == 100

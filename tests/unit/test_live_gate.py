"""The live gate's figures and verdicts on constructed live listings, and the worker's shadow holder."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pricemyride.listing import Listing
from pricemyride.policy import ShadowPolicy, SourcePolicy
from pricemyride.settings import Settings
from pricemyride.storage import PredictionRow, ShadowDrop, ShadowRow
from training.champion import WORKER_ID, Shadow
from training.live_gate import PRICES, band_of, compare_live, decide_live, live_frame
from training.registry import LoadedModel

POLICY = ShadowPolicy(resamples=500)


def live(n: int = 2_000, shadow_error: float = 0.10, champion_error: float = 0.15, seed: int = 1) -> pd.DataFrame:
    """Listings with asking prices; each model misses them by about its share, with an honest 80% range."""
    rng = np.random.default_rng(seed)
    price = rng.uniform(3_000, 60_000, n)
    frame = pd.DataFrame({"price": price, "source": rng.choice(["site-a", "site-b"], n)})
    for who, error in (("shadow", shadow_error), ("champion", champion_error)):
        fair = price * (1 + rng.normal(0, error, n))
        width = 1.2816 * error  # the normal's 10th and 90th percentiles
        frame[f"{who}_fair"], frame[f"{who}_low"], frame[f"{who}_high"] = fair, fair * (1 - width), fair * (1 + width)
    return frame


def test_a_shadow_clearly_better_wins_with_the_interval_below_the_margin() -> None:
    comparison = compare_live(live(), POLICY)
    assert comparison is not None
    assert comparison.rows == 2_000
    assert comparison.shadow_mae < comparison.champion_mae
    assert comparison.ci_low <= comparison.shadow_mae - comparison.champion_mae <= comparison.ci_high < 0
    verdict = decide_live(comparison, 0.02, SourcePolicy())
    assert verdict.shadow_wins, verdict.reason
    assert set(comparison.by_source) == {"site-a", "site-b"}


def test_an_equal_shadow_loses_because_the_interval_reaches_above_the_margin() -> None:
    comparison = compare_live(live(shadow_error=0.15), POLICY)
    assert comparison is not None
    verdict = decide_live(comparison, 0.02, SourcePolicy())
    assert not verdict.shadow_wins
    assert "expected all of it below" in verdict.reason
    assert comparison.ci_low < 0 < comparison.ci_high


def test_a_better_shadow_with_a_range_too_narrow_loses_on_coverage() -> None:
    frame = live()
    frame["shadow_low"], frame["shadow_high"] = frame["shadow_fair"] * 0.97, frame["shadow_fair"] * 1.03
    comparison = compare_live(frame, POLICY)
    assert comparison is not None
    verdict = decide_live(comparison, 0.02, SourcePolicy())
    assert not verdict.shadow_wins
    assert "covers" in verdict.reason
    assert "expected 75% … 85%" in verdict.reason


def test_a_shadow_better_overall_but_worse_on_one_site_loses_naming_it() -> None:
    frame = live(n=3_000, shadow_error=0.05).assign(source="site-a")
    frame.loc[:299, "source"] = "site-b"
    frame.loc[:299, "shadow_fair"] = frame.loc[:299, "price"] * 1.3  # one site's prices steered it
    comparison = compare_live(frame, POLICY)
    assert comparison is not None
    verdict = decide_live(comparison, 0.02, SourcePolicy(gate_min_rows=100))
    assert not verdict.shadow_wins
    assert "site-b" in verdict.reason


def test_bands_are_of_the_champions_own_price_and_too_few_rows_give_no_comparison() -> None:
    assert list(band_of(pd.Series([1_000.0, 7_000.0, 50_000.0]))) == ["$0k–5k", "$5k–10k", "$40k+"]
    assert compare_live(live(n=1), POLICY) is None


def test_live_rows_become_one_frame_of_listing_fields_and_both_prices() -> None:
    rows = [("site-a", 10.0, 8.0, 12.0, 11.0, 9.0, 13.0, {"price": 10.5, "year": 2015})]
    frame = live_frame(rows)
    assert set(Listing.model_fields) <= set(frame.columns), "every field, even one a stored listing lacks"
    picked = frame.iloc[0][["price", "year", "source", *PRICES]].to_dict()
    assert picked == {
        "price": 10.5,
        "year": 2015,
        "source": "site-a",
        "shadow_fair": 10.0,
        "shadow_low": 8.0,
        "shadow_high": 12.0,
        "champion_fair": 11.0,
        "champion_low": 9.0,
        "champion_high": 13.0,
    }
    assert frame.iloc[0]["title_status"] is None or pd.isna(frame.iloc[0]["title_status"])


class Priced:
    def __init__(self, prices: list[list[float]] | None) -> None:
        self.prices = prices

    def price_ranges(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if self.prices is None:
            raise RuntimeError("broken shadow")
        return np.array(self.prices)


def rows_and_listings(n: int) -> tuple[list[PredictionRow], list[Listing]]:
    now = datetime.now(UTC)
    listings = [Listing(id=f"l{i}", source="site-a", price=9_000, event_time=now) for i in range(n)]
    rows = [PredictionRow("site-a", x.id, 3, x.event_id, 1.0, 0.5, 2.0, None, 9_000, now, now, "{}") for x in listings]
    return rows, listings


def holder(prices: list[list[float]] | None, version: int = 4) -> Shadow:
    shadow = Shadow(Settings())
    shadow.model = LoadedModel(version=version, model=Priced(prices), run_id="r")  # type: ignore[arg-type]
    return shadow


def priced(shadow: Shadow, champion: int, rows: list[PredictionRow], listings: list[Listing]
           ) -> tuple[list[ShadowRow], list[ShadowDrop]]:  # fmt: skip
    """A batch through the holder as the worker sends it: started on the shadow's thread, then its outcome."""

    async def run() -> tuple[list[ShadowRow], list[ShadowDrop]]:
        return await shadow.outcome(shadow.start(champion, rows, listings))

    return asyncio.run(run())


def test_the_shadow_prices_beside_the_champion_and_skips_what_it_cannot_price() -> None:
    rows, listings = rows_and_listings(3)
    shadow = holder([[9_000, 8_000, 10_000], [float("nan"), 1, 2], [8_500, 7_000, 9_900]])
    out, drops = priced(shadow, 3, rows, listings)
    assert [(r.listing_id, r.shadow_version, r.champion_version, r.predicted_price) for r in out] == [
        ("l0", 4, 3, 9_000), ("l2", 4, 3, 8_500)]  # fmt: skip
    assert drops == []
    assert holder([[1, 1, 1]] * 3, version=3).start(3, rows, listings) is None, "the champion is no shadow of itself"


def test_a_shadow_that_raises_is_dropped_with_its_reason_and_never_raises() -> None:
    rows, listings = rows_and_listings(2)
    shadow = holder(None)
    out, drops = priced(shadow, 3, rows, listings)
    assert out == []
    assert shadow.model is None
    assert [(d.shadow_version, "broken shadow" in d.reason) for d in drops] == [(4, True)]
    assert shadow.take_drops() == []
    assert 4 in shadow.dropped
    assert shadow.start(3, rows, listings) is None, "a dropped shadow prices nothing more"


@pytest.mark.parametrize("recorded", [None, 4])
def test_a_dropped_version_is_not_loaded_again_and_an_ended_shadow_is_let_go(
    monkeypatch: pytest.MonkeyPatch, recorded: int | None
) -> None:
    from training import champion as module
    from training.shadow import ActiveShadow, Role

    record = None if recorded is None else ActiveShadow(recorded, 3, Role.CHALLENGER, datetime.now(UTC))
    monkeypatch.setattr(module, "active_shadow", lambda settings, url: record)
    shadow = holder([[1, 1, 1]], version=5)
    shadow.dropped.add(4)
    asyncio.run(shadow.refresh("test"))
    assert shadow.model is None


def test_a_batch_without_a_shadow_or_drops_stores_nothing_for_it_and_a_drop_is_stored_with_the_next() -> None:
    rows, listings = rows_and_listings(2)
    shadow = Shadow(Settings())

    async def run() -> tuple[list[ShadowRow], list[ShadowDrop]] | None:
        assert shadow.pending(3, rows, listings) is None, "no shadow, no drop: no task in the batch's way"
        shadow.drop(4, "could not load: broken pickle")
        task = shadow.pending(3, rows, listings)
        return None if task is None else await task

    assert asyncio.run(run()) == ([], [ShadowDrop(4, WORKER_ID, "could not load: broken pickle")])

"""Each cleaning rule removes what it names and keeps the rest."""

from __future__ import annotations

import pandas as pd
import pytest

from training.cleaning import RULES, clean, is_usable_label

GOOD = {
    "price": 12_500, "year": 2014, "manufacturer": "honda", "model": "civic ex", "odometer": 80_000,
    "title_status": "clean", "posting_date": "2021-04-10T10:00:00-0500", "region": "boston",
}  # fmt: skip


def frame(**changes: object) -> pd.DataFrame:
    return pd.DataFrame([GOOD | changes])


@pytest.mark.parametrize(
    ("rule", "changes"),
    [
        ("price_missing_or_token", {"price": 0}),
        ("price_missing_or_token", {"price": 1}),
        ("price_missing_or_token", {"price": None}),
        ("price_anchor", {"price": 12_345}),
        ("price_anchor", {"price": 99_999}),
        ("price_absurd", {"price": 1_410_065_407}),
        ("year_missing_or_absurd", {"year": None}),
        ("year_missing_or_absurd", {"year": 1901}),
        ("odometer_absurd", {"odometer": 10_000_000}),
        ("odometer_absurd", {"odometer": 1}),
        ("make_missing", {"manufacturer": None}),
        ("parts_only", {"title_status": "parts only"}),
    ],
)
def test_rule_removes_what_it_names(rule: str, changes: dict[str, object]) -> None:
    assert RULES[rule](frame(**changes)).tolist() == [True]
    assert RULES[rule](frame()).tolist() == [False]


@pytest.mark.parametrize("changes", [{"title_status": "salvage"}, {"title_status": "rebuilt"}, {"odometer": None},
                                     {"year": 2021, "odometer": 3}, {"price": 500}])  # fmt: skip
def test_kept_on_purpose(changes: dict[str, object]) -> None:
    usable, report = clean(frame(**changes))
    assert len(usable) == 1, report.removed


def test_cross_posts_keep_one_copy_and_the_report_counts_each_rule() -> None:
    rows = pd.concat([frame(region="boston"), frame(region="worcester"), frame(price=0), frame(odometer=90_000)])
    usable, report = clean(rows)
    assert len(usable) == 2
    assert report.removed["cross_posted"] == 1
    assert report.removed["price_missing_or_token"] == 1
    assert report.rows_out == 2


def test_a_one_dollar_listing_is_not_a_label() -> None:
    assert is_usable_label(pd.concat([frame(), frame(price=1)])).tolist() == [True, False]

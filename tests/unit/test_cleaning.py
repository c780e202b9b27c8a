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
        ("parts_only", {"title_status": "parts only"}),
    ],
)
def test_rule_removes_what_it_names(rule: str, changes: dict[str, object]) -> None:
    assert RULES[rule](frame(**changes)).tolist() == [True]
    assert RULES[rule](frame()).tolist() == [False]


@pytest.mark.parametrize("changes", [{"title_status": "salvage"}, {"title_status": "rebuilt"}, {"odometer": None},
                                     {"year": 2021, "odometer": 3}, {"price": 500}, {"year": None},
                                     {"model": None}, {"manufacturer": None}, {"year": None, "model": None}],
)  # fmt: skip
def test_a_good_price_is_a_label_whatever_fields_are_missing(changes: dict[str, object]) -> None:
    usable, report = clean(frame(**changes))
    assert len(usable) == 1, report.removed


@pytest.mark.parametrize(
    ("rule", "changes", "column"),
    [
        ("year_impossible", {"year": 1901}, "year"),
        ("odometer_impossible", {"odometer": 10_000_000}, "odometer"),
        ("odometer_impossible", {"odometer": 1}, "odometer"),
    ],
)
def test_an_impossible_value_is_blanked_and_the_row_kept(rule: str, changes: dict[str, object], column: str) -> None:
    usable, report = clean(frame(**changes))
    assert len(usable) == 1
    assert pd.isna(usable[column].iloc[0])
    assert report.blanked[rule] == 1
    assert sum(report.blanked.values()) == 1


def test_repeats_of_a_listing_without_a_year_are_duplicates_too() -> None:
    told = {"year": None, "condition": "good", "fuel": "gas"}
    rows = pd.concat([frame(**told, region="boston"), frame(**told, region="worcester"),
                      frame(**told, price=9_000)])  # fmt: skip
    usable, report = clean(rows)
    assert len(usable) == 2
    assert report.removed["cross_posted"] == 1


def test_two_sparse_listings_of_the_same_make_and_price_are_two_cars() -> None:
    sparse = pd.DataFrame([{"price": 6_000, "manufacturer": "ford"}] * 2).reindex(columns=list(GOOD))
    usable, report = clean(sparse)
    assert len(usable) == 2, report.removed


def test_a_value_is_judged_as_given_before_another_is_blanked() -> None:
    usable, report = clean(frame(year=1901, odometer=1))
    assert report.blanked == {"year_impossible": 1, "odometer_impossible": 1}
    assert usable[["year", "odometer"]].isna().all(axis=None)


def test_cross_posts_keep_one_copy_and_the_report_counts_each_rule() -> None:
    rows = pd.concat([frame(region="boston"), frame(region="worcester"), frame(price=0), frame(odometer=90_000)])
    usable, report = clean(rows)
    assert len(usable) == 2
    assert report.removed["cross_posted"] == 1
    assert report.removed["price_missing_or_token"] == 1
    assert report.rows_out == 2


def test_a_one_dollar_listing_is_not_a_label() -> None:
    assert is_usable_label(pd.concat([frame(), frame(price=1)])).tolist() == [True, False]

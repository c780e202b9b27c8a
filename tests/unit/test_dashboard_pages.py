"""The dashboard's pages as modules: component ids defined once across pages, the deal finder's SQL built
from the chosen filters only, the exports' names, arguments and file formats, and the market pictures."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dash.development.base_component import Component

from dashboard import exports, market_figures
from dashboard.deal_query import DealFilters, count_query, page_query, where
from dashboard.inputs import InputError
from dashboard.pages import PAGES
from dashboard.pages import deals as deals_page
from dashboard.pages import lookup as lookup_page
from dashboard.pages import market as market_page
from pricemyride.settings import Settings


class FakeRegistry:
    def known_values(self) -> dict[str, Any]:
        return {}


class FakePool:
    """Pages that list choices from the database get none."""

    def connection(self) -> Any:
        raise AssertionError("layouts under test must not need the database")


def ids_of(node: Any) -> list[str]:
    found = []
    if isinstance(node, Component):
        if getattr(node, "id", None):
            found.append(node.id)
        node = getattr(node, "children", None)
    if isinstance(node, list | tuple):
        for child in node:
            found += ids_of(child)
    elif isinstance(node, Component):
        found += ids_of(node)
    return found


def test_every_component_id_is_defined_once_across_the_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import queries
    from dashboard.page import Context

    monkeypatch.setattr(queries, "market_values", lambda *a, **k: [])
    monkeypatch.setattr(queries, "sources", lambda *a, **k: [])
    ctx = Context(Settings(), FakePool(), FakeRegistry())  # type: ignore[arg-type]
    every = [i for page in PAGES for i in ids_of(page.layout(ctx))]
    assert len(every) > 50
    assert len(every) == len(set(every)), sorted({i for i in every if every.count(i) > 1})
    assert len({p.path for p in PAGES}) == len(PAGES)


def test_only_the_chosen_filters_enter_the_deal_query() -> None:
    condition, params = where(DealFilters.of({"make": " Ford ", "year_from": 2015, "ratings": ["great"]}))
    text = condition.as_string(None)
    assert [
        c for c in ("make = %s", "year >= %s", "deal_rating = ANY(%s)", "state", "asking_price >=") if c in text
    ] == ["make = %s", "year >= %s", "deal_rating = ANY(%s)"]
    assert params == ["ford", 2015, ["great"]]
    query, page = page_query(DealFilters(), 25, 50)
    assert page == [25, 50]
    assert "ORDER BY discount DESC" in query.as_string(None)
    assert count_query(DealFilters(state="ca"))[1][-1] == 10_001


def test_filters_in_words_name_what_was_chosen() -> None:
    filters = DealFilters.of({"family": "F-150", "ratings": ["great", "good"], "since": date(2026, 11, 6)})
    assert filters.described() == "family=f-150 ratings=great,good since=2026-11-06"
    assert DealFilters().described() == "all"


def test_an_export_file_is_named_by_its_view_filter_and_rows() -> None:
    found = exports.deals_export({"family": "f-150", "ratings": "great,good"})
    assert exports.file_name(found, 12, "csv") == "deals_family=f-150_ratings=great,good_12-rows.csv"
    hostile = exports.Export("deals", found.query, [], 'make=a"; rm -rf /\n' + "x" * 500)
    name = exports.file_name(hostile, 1, "parquet")
    assert not set(name) & set('"\n /;')
    assert len(name) < 160


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"year_from": "abc"}, "year_from: expected a number 1900 … 2100, got 'abc'"),
        ({"year_to": "3000"}, "year_to: expected a number 1900 … 2100, got '3000'"),
        ({"ratings": "great,bogus"}, "ratings: expected some of great, good, fair, high, overpriced, not enough "
                                     "information, got 'bogus'"),
        ({"make": "x" * 101}, "make: expected at most 100 characters, got 101"),
        ({"make": "ford\x00"}, "make: expected printable text (no control or format characters), got 'ford\\x00'"),
        ({"family": "f\u202e150"}, "family: expected printable text (no control or format characters), got "
                                   "'f\\u202e150'"),
        ({"price_to": "nan"}, "price_to: expected a number 0 … 1e+09, got 'nan'"),
        ({"price_from": "1e400"}, "price_from: expected a number 0 … 1e+09, got '1e400'"),
        ({"since": "1e9"}, "since: expected a number 0 … 36500, got '1e9'"),
    ],
)  # fmt: skip
def test_a_bad_export_argument_gets_one_line_naming_what_was_expected(args: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as refused:
        exports.deals_export(args)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"make": {"$ne": 1}}, "make: expected text, got {'$ne': 1}"),
        ({"year_from": True}, "year_from: expected a number 1900 … 2100, got True"),
        ({"year_from": [2015]}, "year_from: expected a number 1900 … 2100, got [2015]"),
        ({"ratings": "great"}, ""),
        ({"ratings": [{"a": 1}]}, "ratings: expected some of great, good, fair, high, overpriced, not enough "
                                  "information, got {'a': 1}"),
    ],
)  # fmt: skip
def test_what_a_hand_made_dash_request_sends_is_checked_like_a_form(values: dict[str, Any], message: str) -> None:
    """The page's callback gets JSON from the browser, whatever a client puts there."""
    if not message:
        assert DealFilters.parsed(values).ratings == ("great",)
        return
    with pytest.raises(InputError) as refused:
        DealFilters.parsed(values)
    assert str(refused.value) == message


def test_a_form_value_the_finder_cannot_use_shows_one_line_and_no_rows() -> None:
    answer = deals_page.refresh(None, {"make": "ford\x00", "ratings": ["great"]}, 0)  # type: ignore[arg-type]
    assert answer == {
        "data": [],
        "page": 0,
        "page_count": 1,
        "exports": "",
        "matches": "make: expected printable text (no control or format characters), got 'ford\\x00'",
    }
    assert lookup_page.looked_up(None, "demo", "x\x00")["status"].startswith("id: expected printable text")  # type: ignore[arg-type]
    market = market_page.refresh(None, "posted", "week", "segment; DROP", None)  # type: ignore[arg-type]
    assert market["status"] == ("segment: expected one of all, make, model, type, state, got 'segment; DROP'")


def test_unknown_views_and_formats_are_refused() -> None:
    with pytest.raises(exports.ExportError, match="format: expected csv or parquet, got 'xlsx'"):
        exports.built("deals", "xlsx", {})
    with pytest.raises(exports.ExportError, match="view: expected one of deals") as refused:
        exports.built("passwords", "csv", {})
    assert refused.value.status == 404


COLUMNS = [("source", 25), ("price", 701), ("day", 1082), ("listing", 3802)]
CHUNKS = [(COLUMNS, [("a", 1.5, date(2021, 4, 5), {"make": "ford"})]), (COLUMNS, [("b", None, None, None)])]


def test_csv_streams_a_header_then_every_chunk() -> None:
    text = b"".join(exports.csv_stream(iter(CHUNKS))).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["source", "price", "day", "listing"], ["a", "1.5", "2021-04-05", '{"make":"ford"}'],
                    ["b", "", "", ""]]  # fmt: skip


def test_parquet_streams_one_row_group_per_chunk_and_an_empty_view_still_has_its_schema() -> None:
    parts = list(exports.parquet_stream(iter(CHUNKS)))
    assert len(parts) == 3  # two row groups, then the footer
    table = pq.read_table(io.BytesIO(b"".join(parts)))
    assert table.column("price").type == pa.float64()
    assert table.column("day").to_pylist() == [date(2021, 4, 5), None]
    empty = pq.read_table(io.BytesIO(b"".join(exports.parquet_stream(iter([(COLUMNS, [])])))))
    assert (empty.num_rows, empty.column_names) == (0, ["source", "price", "day", "listing"])


def test_version_changes_are_marked_where_a_newer_model_took_over() -> None:
    versions = ((1, 1), (2, 1), (3, 2), (4, 1), (5, 2), (6, 3))  # period 4: v1 still valued most, no change
    rows = [{"period": date(2021, 1, d), "model_version": v} for d, v in versions]
    assert market_figures.version_changes(rows) == [(date(2021, 1, 3), 2), (date(2021, 1, 6), 3)]
    assert len(market_figures.version_marks(rows, subplots=3)) == 6
    figure = market_figures.index_figure([{**r, "retention": 1.0, "asking_median": 1.0, "listings": 1} for r in rows],
                                         "whole market", "day")  # fmt: skip
    assert [a.text for a in figure.layout.annotations if a.text.startswith("v")] == ["v2", "v3"]


def market_row(day: date, listings: int = 10) -> dict[str, Any]:
    shares = dict.fromkeys(("great", "good", "fair", "high", "overpriced", "unsure"), listings // 5)
    return {"period": day, "listings": listings, "retention": 1.05, "asking_median": 15_000.0, "model_version": 1,
            **shares, "unsure": listings - 5 * (listings // 5)}  # fmt: skip


def test_the_index_lines_break_over_weeks_without_listings_and_a_lone_period_gets_an_axis_of_weeks() -> None:
    weeks = [date(2020, 11, 23), date(2020, 11, 30), date(2021, 4, 5), date(2021, 4, 12)]
    figure = market_figures.index_figure([market_row(d) for d in weeks], "whole market", "week")
    retention = figure.data[0]
    assert list(retention.x) == [*weeks[:2], date(2020, 12, 7), *weeks[2:]]
    assert retention.y[2] is None
    assert None not in (retention.y[:2] + retention.y[3:])
    assert list(figure.data[2].x) == weeks  # the listings bars: one a period, no empty one
    lone = market_figures.index_figure([market_row(date(2026, 12, 6))], "whole market", "day")
    assert list(lone.layout.xaxis.range) == [date(2026, 12, 5), date(2026, 12, 7)]
    assert lone.data[2].width == 0.8 * 86_400_000


def test_the_deal_share_is_a_bar_a_period_stacked_to_the_whole() -> None:
    rows = [market_row(date(2021, 4, 5), 12), market_row(date(2021, 4, 12), 7)]
    figure = market_figures.deal_share_figure(rows, "week")
    assert [trace.type for trace in figure.data] == ["bar"] * 6
    assert figure.layout.barmode == "stack"
    for period in range(2):
        assert sum(trace.y[period] for trace in figure.data) == pytest.approx(1.0)
    assert figure.data[5].name == "not enough information"
    assert figure.data[5].y[0] == pytest.approx(2 / 12)

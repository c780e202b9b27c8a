"""The deal finder, the listing look-up and the exports in headless Chromium over the seeded database: a
filter narrows the deal list (and its count is the database's); an export downloads a file whose rows are
the filtered view's; the look-up shows every valuation of a listing, its factors and its comparables."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import pyarrow.parquet as pq
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from dashboard.deal_query import SHOWN
from dashboard.figures import money
from dashboard.pages.deals import COLUMNS as DEAL_COLUMNS
from dashboard.pages.deals import Id as Deals
from dashboard.pages.lookup import Id as Lookup
from tests.e2e.conftest import ARTIFACTS, DOWNLOADS, MARKET_FAIR, Seeded
from tests.e2e.test_dashboard import fill, open_page, table_cells, text_of
from tests.integration.helpers import query, scalar

pytestmark = pytest.mark.integration
DEAL = {name: i for i, (_, name) in enumerate(DEAL_COLUMNS)}
MATCHING = "SELECT count(*) FROM market_listings WHERE discount IS NOT NULL AND deal_rating IN ('great', 'good')"


def downloaded(prefix: str, suffix: str, timeout_s: float = 30) -> Path:
    """The file the browser saved whose name starts with ``prefix`` (once it is complete)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = [p for p in DOWNLOADS.glob(f"{prefix}*{suffix}") if p.stat().st_size > 0]
        if done:
            return done[0]
        time.sleep(0.3)
    raise AssertionError(f"expected a downloaded {prefix}…{suffix} in {DOWNLOADS}, got {sorted(DOWNLOADS.iterdir())}")


def test_a_filter_narrows_the_deal_list_and_the_export_holds_the_same_rows(
    browser: WebDriver, dashboard_url: str, seeded: Seeded
) -> None:
    everything = scalar(seeded.settings, MATCHING)
    open_page(browser, dashboard_url + "/deals", lambda b: f"{everything:,} listings" in text_of(b, Deals.MATCHES),
              "deals")  # fmt: skip
    rows = table_cells(browser, Deals.TABLE)
    shown = [float(r[DEAL["Below fair"]].rstrip("%")) for r in rows]
    assert shown == sorted(shown, reverse=True)  # the best discount first
    fill(browser, Deals.FAMILY, "f-150" + Keys.ENTER)
    fords = scalar(seeded.settings, MATCHING + " AND family = 'f-150'")
    assert 0 < fords < everything
    WebDriverWait(browser, 30).until(lambda b: f"{fords:,} listings" in text_of(b, Deals.MATCHES))
    browser.save_screenshot(str(ARTIFACTS / "deals-f-150.png"))
    assert all("f-150" in r[DEAL["Car"]] for r in table_cells(browser, Deals.TABLE))
    for old in DOWNLOADS.glob("deals_*"):
        old.unlink()
    browser.find_element(By.ID, f"{Deals.EXPORTS}-csv").click()
    exported = downloaded("deals_family=f-150", ".csv")
    assert f"_{fords}-rows" in exported.name
    with exported.open(newline="") as f:
        lines = list(csv.DictReader(f))
    expected = query(seeded.settings, "SELECT source, listing_id FROM market_listings WHERE discount IS NOT NULL "
                     "AND deal_rating IN ('great', 'good') AND family = 'f-150'")  # fmt: skip
    assert sorted((r["source"], r["listing_id"]) for r in lines) == sorted(expected)
    browser.find_element(By.ID, f"{Deals.EXPORTS}-parquet").click()
    table = pq.read_table(downloaded("deals_family=f-150", ".parquet"))
    assert table.num_rows == fords
    assert {m.split(" ")[0] for m in table.column("model").to_pylist()} == {"f-150"}


def test_the_look_up_shows_every_valuation_its_factors_and_its_comparables(
    browser: WebDriver, dashboard_url: str, seeded: Seeded
) -> None:
    open_page(browser, dashboard_url + "/lookup", lambda b: bool(b.find_elements(By.ID, Lookup.SUBMIT)), "lookup")
    fill(browser, Lookup.SOURCE, "market-e2e")
    fill(browser, Lookup.LISTING, "m-toyota-0")
    browser.find_element(By.ID, Lookup.SUBMIT).click()
    WebDriverWait(browser, 30).until(lambda b: len(table_cells(b, Lookup.VALUATIONS)) == 2)
    WebDriverWait(browser, 30).until(lambda b: table_cells(b, Lookup.COMPARABLES))
    browser.save_screenshot(str(ARTIFACTS / "lookup-result.png"))
    versions = table_cells(browser, Lookup.VALUATIONS)
    assert [r[0] for r in versions] == ["v2", "v1"]
    assert versions[1][1] == money(MARKET_FAIR["toyota"])
    assert "Explained by v" in text_of(browser, Lookup.EXPLAINED)
    comparables = table_cells(browser, Lookup.COMPARABLES)
    assert all("toyota camry" in r[0] for r in comparables)
    assert "m-toyota-0" not in {r[-1] for r in comparables}  # never the listing itself


def test_a_listing_that_is_not_there_says_so(browser: WebDriver, dashboard_url: str, seeded: Seeded) -> None:
    open_page(browser, dashboard_url + "/lookup", lambda b: bool(b.find_elements(By.ID, Lookup.SUBMIT)), "lookup")
    fill(browser, Lookup.SOURCE, "market-e2e")
    fill(browser, Lookup.LISTING, "no-such-listing")
    browser.find_element(By.ID, Lookup.SUBMIT).click()
    WebDriverWait(browser, 30).until(lambda b: "No valuation" in text_of(b, Lookup.STATUS))
    assert table_cells(browser, Lookup.VALUATIONS) == []


@pytest.mark.parametrize(
    ("path", "status", "line"),
    [
        ("/export/deals.csv?year_from=abc", 400, "year_from: expected a number 1900 … 2100, got 'abc'"),
        ("/export/deals.xlsx", 400, "format: expected csv or parquet, got 'xlsx'"),
        ("/export/passwords.csv", 404, "view: expected one of deals, market, valuations, latest, dead-letters, "
                                       "model-events, drift-windows, got 'passwords'"),
        ("/export/deals.csv?make=" + "x" * 5000, 400, "make: expected at most 100 characters, got 5000"),
        ("/export/market.csv?segment=make", 400, "value: expected the make to export, got nothing"),
        ("/export/deals.csv?make=%00", 400, "make: expected printable text (no control or format characters), "
                                            "got '\\x00'"),
    ],
)  # fmt: skip
def test_a_hostile_export_request_gets_one_line_and_the_dashboard_goes_on(
    dashboard_url: str, path: str, status: int, line: str
) -> None:
    with pytest.raises(HTTPError) as refused:
        urlopen(dashboard_url + path, timeout=10)
    assert refused.value.code == status
    assert refused.value.read().decode() == line + "\n"
    with urlopen(dashboard_url + "/export/deals.csv?make=%27%20OR%201%3D1%20--", timeout=10) as answer:
        assert answer.read().decode().splitlines() == [",".join(SHOWN)]  # bound, not spliced: no row matches
        assert answer.headers["X-Rows"] == "0"

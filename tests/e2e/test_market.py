"""The Market page in headless Chromium over the seeded rollups: the whole market's weekly index shows the
seeded surge and the version change; picking a segment redraws it for that segment."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from dashboard.figures import money
from dashboard.pages.market import COLUMNS, Id
from tests.e2e.conftest import ARTIFACTS, MARKET_FAIR, MARKET_SURGE_WEEK, MARKET_WEEKS, Seeded
from tests.e2e.test_dashboard import open_page, table_cells, text_of

pytestmark = pytest.mark.integration
COLUMN = {name: i for i, (_, name) in enumerate(COLUMNS)}


def periods(browser: WebDriver) -> list[list[str]]:
    return table_cells(browser, Id.TABLE)


def test_the_whole_markets_index_shows_the_surge_and_the_version_change(
    browser: WebDriver, dashboard_url: str, seeded: Seeded
) -> None:
    open_page(browser, dashboard_url + "/market", lambda b: len(periods(b)) == MARKET_WEEKS, "market")
    rows = periods(browser)  # newest week first
    surge, before = rows[: MARKET_WEEKS - MARKET_SURGE_WEEK], rows[MARKET_WEEKS - MARKET_SURGE_WEEK :]
    assert {r[COLUMN["Retention"]] for r in surge} == {"120.0%"}
    assert {r[COLUMN["Retention"]] for r in before} == {"90.0%"}
    both = sorted(MARKET_FAIR.values())
    assert rows[-1][COLUMN["Median asking"]] == money(0.9 * sum(both) / 2)
    assert {r[COLUMN["Valued mostly by"]] for r in surge} == {"v2"}
    assert rows[-1][COLUMN["Period"]] == "2021-03-01"
    assert rows[-1][COLUMN["Listings"]] == "14"  # two a day
    index = browser.find_element(By.ID, Id.INDEX)
    assert "v2" in index.text  # the version change is marked
    assert index.find_elements(By.CSS_SELECTOR, ".shapelayer path[style*='rgb(26, 127, 55)']")
    assert "Rollups of" in text_of(browser, Id.STATUS)
    assert "great" in text_of(browser, Id.DEALS)


def test_a_segment_change_redraws_the_index_for_that_segment(
    browser: WebDriver, dashboard_url: str, seeded: Seeded
) -> None:
    open_page(browser, dashboard_url + "/market", lambda b: len(periods(b)) == MARKET_WEEKS, "market")
    whole = periods(browser)[-1][COLUMN["Median asking"]]
    browser.find_element(By.CSS_SELECTOR, f"#{Id.SEGMENT} input[value='make']").click()
    first = "ford"  # both makes are listed as often: the first by name
    WebDriverWait(browser, 30).until(lambda b: f"make {first}" in text_of(b, Id.INDEX))
    WebDriverWait(browser, 30).until(lambda b: periods(b) and periods(b)[-1][COLUMN["Median asking"]] != whole)
    browser.save_screenshot(str(ARTIFACTS / "market-make.png"))
    rows = periods(browser)
    assert rows[-1][COLUMN["Median asking"]] == money(0.9 * MARKET_FAIR[first])
    assert rows[0][COLUMN["Median asking"]] == money(1.2 * MARKET_FAIR[first])
    assert rows[-1][COLUMN["Listings"]] == "7"

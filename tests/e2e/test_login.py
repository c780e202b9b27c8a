"""The production dashboard (Waitress, logins file) in Chromium: a visitor without a login sees the sign-in
form and nothing of the dashboard; a wrong password is refused; the right one opens the Live page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.security import generate_password_hash

from tests.e2e.conftest import ARTIFACTS, Seeded
from tests.integration.helpers import scalar, served_dashboard

pytestmark = pytest.mark.integration
USER, PASSWORD = "analyst", "e2e-password-long-enough"


@pytest.fixture(scope="module")
def login_url(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`pricemyride dashboard` as production serves it: Waitress, every route behind the login."""
    folder = tmp_path_factory.mktemp("login")
    (folder / "users").write_text(f"{USER}:{generate_password_hash(PASSWORD)}\n")
    with served_dashboard(folder / "users", folder / "dashboard.log") as port:
        yield f"127.0.0.1:{port}"


def test_chromium_signs_in_through_the_form_and_sees_the_live_page(
    browser: WebDriver, login_url: str, seeded: Seeded
) -> None:
    browser.get(f"http://{login_url}/")
    browser.save_screenshot(str(ARTIFACTS / "login-form.png"))
    assert browser.title == "PriceMyRide — sign in"
    assert not browser.find_elements(By.ID, "page")  # nothing of the dashboard before the login
    assert "_dash-config" not in browser.page_source
    browser.find_element(By.ID, "user").send_keys(USER)
    browser.find_element(By.ID, "password").send_keys("not the password")
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "sign-in-error"))
    browser.find_element(By.ID, "user").send_keys(USER)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    try:
        WebDriverWait(browser, 30, poll_frequency=0.3).until(
            lambda b: b.find_elements(By.ID, "scored") and b.find_element(By.ID, "scored").text not in ("", "…")
        )
    finally:
        browser.save_screenshot(str(ARTIFACTS / "login-live.png"))
    scored = scalar(seeded.settings, "SELECT count(*) FROM predictions")
    assert browser.find_element(By.ID, "scored").text == f"{scored:,}"

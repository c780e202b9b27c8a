"""The dashboard in real headless Chromium (Debian's chromium + chromedriver, driven by Selenium) against
a dashboard process of its own over a seeded database: fixed predictions, dead letters, drift windows,
model events, and a real two-version registry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from psycopg.types.json import Jsonb
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from monitoring import market
from pricemyride.bootstrap import prepare
from pricemyride.settings import Settings
from tests.conftest import isolated_env
from tests.integration.helpers import free_port, wait_for
from tests.integration.test_prefect_deployment import answers

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
DOWNLOADS = ARTIFACTS / "downloads"  # what the exports' links download
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# This machine's closed network: no background traffic, no sandbox as root, fresh profile per run.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1366,1000")  # fmt: skip
CARS = (("toyota", "camry", 2016), ("ford", "f-150", 2014), ("honda", "civic", 2018), ("bmw", "x5", 2012))
DEALS = ("great", "good", "fair", "high", "overpriced", "not enough information")


@dataclass(frozen=True)
class Seeded:
    settings: Settings
    v1_rows: int
    v2_rows: int
    dead_letters: dict[str, int]  # field → count
    features: tuple[str, ...]
    rejection: str


def prediction_rows(version: int, count: int, now: datetime, start: int) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(start, start + count):
        make, model, year = CARS[i % len(CARS)]
        fair = 8_000.0 + 250 * i
        listing = {"id": f"e2e-{i}", "manufacturer": make, "model": model, "year": year, "odometer": 1_000.0 * i,
                   "state": "ca", "price": fair * 0.9}  # fmt: skip
        scored = now - timedelta(seconds=2 * (150 - i))  # later ids are newer; all within the last 5 minutes
        rows.append((f"e2e-{i}", version, uuid.uuid4(), fair, fair * 0.8, fair * 1.25, DEALS[i % len(DEALS)],
                     fair * 0.9, scored - timedelta(milliseconds=40), scored, Jsonb(listing)))  # fmt: skip
    return rows


MARKET_WEEKS, MARKET_SURGE_WEEK = 8, 4  # posted weekly from MARKET_START; v2 values the surge weeks
MARKET_START = datetime(2021, 3, 1, 12, tzinfo=UTC)  # a Monday
MARKET_FAIR = {"toyota": 20_000.0, "ford": 30_000.0}


def market_rows(now: datetime) -> list[tuple[Any, ...]]:
    """Two listings a day for eight weeks (a Toyota sedan in California, a Ford pickup in Texas): asked at 0.9 of
    the fair price and rated good for four weeks by v1, then at 1.2 and rated high by v2 (the surge)."""
    rows = []
    for day in range(7 * MARKET_WEEKS):
        surge = day >= 7 * MARKET_SURGE_WEEK
        for make, model, body, state in (("toyota", "camry", "sedan", "ca"), ("ford", "f-150", "pickup", "tx")):
            fair, posted = MARKET_FAIR[make], MARKET_START + timedelta(days=day)
            asking = fair * (1.2 if surge else 0.9)
            listing = {"id": f"m-{make}-{day}", "manufacturer": make, "model": model, "type": body, "state": state,
                       "price": asking, "posting_date": posted.isoformat()}  # fmt: skip
            rows.append(("market-e2e", f"m-{make}-{day}", 2 if surge else 1, uuid.uuid4(), fair, fair * 0.8,
                         fair * 1.25, "high" if surge else "good", asking, now - timedelta(seconds=201),
                         now - timedelta(seconds=200), Jsonb(listing)))  # fmt: skip
    first = rows[0]  # valued again by v2 a second later: the look-up shows both valuations
    rows.append((*first[:2], 2, uuid.uuid4(), first[4] * 1.05, *first[5:10], now - timedelta(seconds=199), first[11]))
    return rows


def seed_market(settings: Settings, now: datetime) -> tuple[int, int]:
    """The market listings, folded into the rollups as the drift monitor does; (v1, v2) rows added."""
    rows = market_rows(now)
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        conn.cursor().executemany(
            "INSERT INTO predictions (source, listing_id, model_version, event_id, predicted_price, price_low, "
            "price_high, deal_rating, asking_price, event_time, scored_at, listing) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)  # fmt: skip
        conn.commit()
        assert market.refresh(conn) is not None
    v2 = sum(1 for r in rows if r[2] == 2)
    return len(rows) - v2, v2


def seed(settings: Settings, v1_rows: int, v2_rows: int, now: datetime) -> tuple[dict[str, int], tuple[str, ...], str]:
    features = ("manufacturer", "odometer", "state", "year", "fuel")
    rejection = "MAE 4,100 does not beat the champion's 4,000 by 2% (needs ≤ 3,920)"
    dead = {"price": 4, "listing": 3}
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        conn.cursor().executemany(
            "INSERT INTO predictions (listing_id, model_version, event_id, predicted_price, price_low, price_high, "
            "deal_rating, asking_price, event_time, scored_at, listing) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            prediction_rows(1, v1_rows, now, 0) + prediction_rows(2, v2_rows, now, v1_rows),
        )
        reasons = ["price: expected a number 0 … 1000000000000, got 'cheap'"] * dead["price"] + [
            "listing: expected a JSON object, got text that is not JSON (Expecting value: line 1 column 1)"
        ] * dead["listing"]
        conn.cursor().executemany(
            "INSERT INTO dead_letters (topic, partition, \"offset\", key, payload, reason, failed_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [("listings", 0, i, f"bad-{i}".encode(), b"not json at all" if r.startswith("listing") else
              json.dumps({"id": f"bad-{i}", "price": "cheap"}).encode(), r, now - timedelta(seconds=i))
             for i, r in enumerate(reasons)],
        )  # fmt: skip
        for w in range(3):
            fired = ["asking_price"] if w == 2 else []
            window_id = conn.execute(
                "INSERT INTO drift_windows (window_start, window_end, model_version, rows, labelled_rows, "
                "drift_share, prediction_drift, price_drift, mae, coverage, fired) "
                "VALUES (%s, %s, 1, 2000, 1900, %s, 0.1, %s, %s, %s, %s) RETURNING id",
                [now - timedelta(minutes=30 - 10 * w), now - timedelta(minutes=20 - 10 * w), 0.2 * w + 0.2,
                 0.05 * w, 3_500 + 400 * w, 0.8 - 0.05 * w, fired],
            ).fetchone()[0]  # type: ignore[index]  # fmt: skip
            conn.cursor().executemany(
                "INSERT INTO drift_features (window_id, feature, score, drifted) VALUES (%s, %s, %s, %s)",
                [(window_id, f, 0.05 * (w + 1) * (k + 1), w == 2 and k >= 2) for k, f in enumerate(features)],
            )
        conn.execute(
            "INSERT INTO retrain_requests (request_id, requested_at, reason, champion_version) VALUES (%s, %s, %s, 1)",
            [uuid.uuid4(), now - timedelta(minutes=1), "asking_price"],
        )
        seed_shadow(conn, settings, now, v1_rows)
        conn.execute(
            "INSERT INTO model_events (kind, version, champion, reason) VALUES ('rejected', 2, 1, %s)", [rejection]
        )
    return dead, features, rejection


def seed_shadow(conn: psycopg.Connection[Any], settings: Settings, now: datetime, v1_rows: int) -> None:
    """Version 2 in shadow beside version 1 for the last hour, closer to the asking prices (0.92 of v1's)."""
    conn.execute("INSERT INTO model_events (at, kind, version, champion, reason, metrics) VALUES "
                 "(%s, 'shadowed', 2, 1, 'offline gate: seeded', %s)",
                 [now - timedelta(hours=1), Jsonb({"model": settings.model_name, "role": "challenger"})])  # fmt: skip
    conn.execute(
        "INSERT INTO shadow_predictions (source, listing_id, shadow_version, champion_version, predicted_price, "
        "price_low, price_high, event_time) SELECT source, listing_id, 2, 1, predicted_price * 0.92, "
        "price_low * 0.92, price_high * 0.92, event_time FROM predictions WHERE model_version = 1 LIMIT %s",
        [v1_rows],
    )


@pytest.fixture(scope="session")
def seeded(services: None, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A world of its own: database, registry (v1 champion, v2 challenger), and the rows above."""
    folder = tmp_path_factory.mktemp("e2e")
    env = isolated_env(f"e2e{uuid.uuid4().hex[:6]}", folder, free_port())
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = Settings()
        prepare(settings)
        from training.model import TrainParams
        from training.train import train

        small = folder / "craigslist_2021_small.csv"
        pd.read_csv(data_dir / "craigslist_2021.csv", nrows=4000).to_csv(small, index=False)
        train(settings, small, params=TrainParams(max_rounds=120), promote=True)
        train(settings, small, params=TrainParams(max_rounds=60), promote=False)
        now = datetime.now(UTC)  # the market rows are scored within the 10-second buckets of the others
        dead, features, rejection = seed(settings, v1_rows=90, v2_rows=30, now=now)
        v1_market, v2_market = seed_market(settings, now)
        yield Seeded(settings, 90 + v1_market, 30 + v2_market, dead, features, rejection)


@pytest.fixture(scope="session")
def dashboard_url(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real `pricemyride dashboard` process on the seeded world."""
    log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    port = seeded.settings.dashboard_port
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pricemyride_cli", "dashboard"], cwd=ROOT, env=os.environ.copy(),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(url + "/") or proc.poll() is not None, 60, "the dashboard")
        assert proc.poll() is None, log.read_text()[-3000:]
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            pytest.fail(f"expected {path} (Debian: apt-get install chromium chromium-driver; make system does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, CSP refusals included
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    options.add_experimental_option("prefs", {"download.default_directory": str(DOWNLOADS),
                                              "download.prompt_for_download": False})  # fmt: skip
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()

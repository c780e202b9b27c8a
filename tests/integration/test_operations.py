"""Operating the real thing: the served dashboard's login over HTTP, and a real Prometheus server scraping a
real worker during a stream — lag and throughput read back through its API, the worker-down alert firing."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from infra import prometheus
from infra.harness import borrow_champion
from infra.services import Paths, stop_pid
from pricemyride.bootstrap import prepare
from pricemyride.settings import Settings
from tests.conftest import isolated_env
from tests.integration.conftest import ROOT, RUN_ID
from tests.integration.helpers import free_port, served_dashboard, spawn, stop, wait_for

pytestmark = pytest.mark.integration
PASSWORD = "a long test password"
BACKLOG = 1_500


def fetch(url: str, auth: tuple[str, str] | None = None, data: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:  # fmt: skip
    """One request, redirects not followed; (status, headers with lower-case names, body)."""
    parts = urllib.parse.urlsplit(url)
    sent = dict(headers or {})
    if auth:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("POST" if data is not None else "GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                     body=data, headers=sent)  # fmt: skip
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        conn.close()


@pytest.fixture
def dashboard(settings: Settings, champion: int, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """`pricemyride dashboard` on Waitress with one login; yields (its URL, its metrics URL, its log)."""
    users = tmp_path / "users"
    users.write_text(f"analyst:{generate_password_hash(PASSWORD)}\n")
    metrics, log_file = free_port(), tmp_path / "dashboard.log"
    # The test client stands in for the TLS proxy: X-Forwarded-For names the client it forwards for.
    with served_dashboard(users, log_file, PRICEMYRIDE_METRICS_PORT=str(metrics),
                          PRICEMYRIDE_DASHBOARD_TRUSTED_PROXY="127.0.0.1") as port:  # fmt: skip
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics}", log_file


def test_the_served_dashboard_shows_nothing_before_login(dashboard: tuple[str, str, Path]) -> None:
    url, metrics_url, log_file = dashboard
    layout_request = json.dumps({"output": "page.children", "outputs": {"id": "page", "property": "children"},
                                 "inputs": [{"id": "url", "property": "pathname", "value": "/"}]}).encode()  # fmt: skip
    for path, data in (("/", None), ("/models", None), ("/_dash-layout", None), ("/_dash-dependencies", None),
                       ("/_dash-update-component", layout_request), ("/assets/style.css", None),
                       ("/export/latest.csv", None), ("/export/deals.parquet", None)):  # fmt: skip
        status, headers, body = fetch(url + path, data=data)
        assert (status, headers["www-authenticate"]) == (401, 'Basic realm="PriceMyRide", charset="UTF-8"'), path
        assert "_dash-config" not in body, path
        assert fetch(url + path, auth=("analyst", "wrong password"), data=data)[0] == 401, path
    status, _, page = fetch(url + "/models", headers={"Accept": "text/html"})
    assert status == 401
    assert 'name="next" value="/models"' in page  # the sign-in form, and nothing of the dashboard
    assert "_dash-config" not in page
    status, headers, body = fetch(url + "/", auth=("analyst", PASSWORD))
    assert (status, headers["server"]) == (200, "PriceMyRide")  # Waitress, not Werkzeug's development server
    assert "_dash-config" in body
    assert fetch(url + "/_dash-layout", auth=("analyst", PASSWORD))[0] == 200
    status, headers, body = fetch(url + "/export/latest.csv", auth=("analyst", PASSWORD))  # behind the same login
    assert (status, body.splitlines()[0]) == (200, "source,listing_id,model_version,predicted_price,price_low,"
                                              "price_high,deal_rating,asking_price,event_time,scored_at,stored_at,"
                                              "year,manufacturer,model,odometer,state")  # fmt: skip
    scraped = fetch(metrics_url + "/metrics")[2]
    refused = [line for line in scraped.splitlines() if line.startswith("pricemyride_dashboard_login_failures_total")]
    assert float(refused[0].split()[-1]) >= 6
    assert fetch(metrics_url + "/readyz")[0] == 200
    assert PASSWORD not in log_file.read_text()


def sign_in(url: str, password: str, target: str = "/models", user: str = "analyst",
            client: str = "192.0.2.1") -> tuple[int, dict[str, str], str]:  # fmt: skip
    form = urllib.parse.urlencode({"user": user, "password": password, "next": target}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": client}
    return fetch(url + "/login", data=form, headers=headers)


def test_a_browser_signs_in_with_the_form_and_out_again(dashboard: tuple[str, str, Path]) -> None:
    url, _, log_file = dashboard
    status, _, body = sign_in(url, "wrong password")
    assert status == 401
    assert "Wrong user or password." in body
    status, headers, _ = sign_in(url, PASSWORD)
    assert (status, headers["location"]) == (303, "/models")
    cookie = headers["set-cookie"]
    assert cookie.startswith("pricemyride_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    session = {"Cookie": cookie.split(";")[0], "Accept": "text/html"}
    status, _, page = fetch(url + "/models", headers=session)
    assert status == 200
    assert "_dash-config" in page
    assert sign_in(url, PASSWORD, target="https://elsewhere.example/")[1]["location"] == "/"  # no open redirect
    assert fetch(url + "/logout")[0] == 401  # only a POST signs out; a GET is any other page
    assert fetch(url + "/logout", headers=session)[0] == 200  # a link or an image cannot sign anyone out
    status, headers, _ = fetch(url + "/logout", headers=session, data=b"")
    assert status == 303
    ended = {"Cookie": headers["set-cookie"].split(";")[0], "Accept": "text/html"}
    assert fetch(url + "/models", headers=ended)[0] == 401
    assert fetch(url + "/models", headers=session)[0] == 401  # a copy of the cookie was revoked on the server
    audit = [line for line in log_file.read_text().splitlines() if "pricemyride.audit" in line]
    assert any("sign-in refused: user 'analyst' from 192.0.2.1 via form" in line for line in audit), audit
    assert any("sign-in accepted: user 'analyst' from 192.0.2.1 via form" in line for line in audit), audit
    assert any("signed out: user 'analyst'" in line for line in audit), audit
    assert PASSWORD not in log_file.read_text()
    # Dash's own request after the session ended: refused, but with no basic challenge (which would make
    # the browser pop its own login box and then keep sending those credentials).
    status, headers, _ = fetch(url + "/_dash-layout", headers={"Cookie": session["Cookie"] + "x"})
    assert status == 401
    assert "www-authenticate" not in headers


def test_the_dashboard_holds_under_abuse(dashboard: tuple[str, str, Path]) -> None:
    url = dashboard[0]
    # 50 MB announced without login: refused by size before a byte of it is read (Waitress answers at once).
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    conn.putrequest("POST", "/_dash-update-component")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(50 * 1024 * 1024))
    conn.endheaders(b"[" * 1024)
    assert conn.getresponse().status == 413
    conn.close()
    assert fetch(url + "/_dash-update-component", data=b"[1,2]")[0] == 401  # who asks comes first
    status, headers, body = fetch(url + "/_dash-update-component", data=b"[1,2]", auth=("analyst", PASSWORD))
    assert (status, body) == (400, "expected a JSON object with 'output' and 'inputs', got a JSON list\n")
    for name in ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy"):
        assert name in headers, name
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    # Throttled per address (as the trusted proxy forwards it) and per user, not for everyone behind the proxy.
    for i in range(10):
        assert sign_in(url, "wrong", user="mallory", client="198.51.100.7")[0] == 401
        assert sign_in(url, "wrong", user="analyst", client=f"203.0.113.{i}")[0] == 401
    assert sign_in(url, "wrong", user="eve", client="198.51.100.7")[0] == 429  # the address is throttled
    assert sign_in(url, PASSWORD, client="192.0.2.44")[0] == 429  # the guessed user is throttled everywhere
    assert sign_in(url, "wrong", user="bob", client="192.0.2.45")[0] == 401  # anyone else is still checked


def prom_query(settings: Settings, query: str) -> list[dict[str, Any]]:
    address = f"{settings.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    status, _, body = fetch(address)
    assert status == 200, body
    return list(json.loads(body)["data"]["result"])


def prom_value(settings: Settings, query: str) -> float | None:
    result = prom_query(settings, query)
    return float(result[0]["value"][1]) if result else None


def firing(settings: Settings, alert: str, service: str) -> bool:
    body = json.loads(fetch(f"{settings.prometheus_url}/api/v1/alerts")[2])
    return any(a["labels"].get("alertname") == alert and a["labels"].get("service") == service
               and a["state"] == "firing" for a in body["data"]["alerts"])  # fmt: skip


@pytest.fixture
def scrape_world(settings: Settings, champion: int, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:  # fmt: skip
    """A world of its own (database, topics, consumer group, state) with the run's champion, and a
    Prometheus server of its own, started by the project's infra like `make up` does."""
    env = isolated_env(f"scrape{RUN_ID}", tmp_path, free_port(), PRICEMYRIDE_MLFLOW_TRACKING_URI=settings.tracking_uri,
                       PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT=str(settings.artifact_root),
                       PRICEMYRIDE_PROMETHEUS_URL=f"http://127.0.0.1:{free_port()}")  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    world = Settings()
    prepare(world)
    borrow_champion(world)
    paths = Paths(world.state_path)
    prometheus.start(world, paths)
    try:
        yield world
    finally:
        stop_pid("prometheus", paths)


def produce(count: int) -> None:
    done = subprocess.run([sys.executable, "-m", "pricemyride_cli", "produce", "--limit", str(count)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_prometheus_reads_lag_and_throughput_and_pages_when_the_worker_stops(
    scrape_world: Settings, tmp_path: Path
) -> None:
    world, port, selector = scrape_world, free_port(), '{service="scrape-worker"}'
    # One listing per batch: the backlog then takes several scrapes (5 s apart) to drain.
    worker = spawn(["-m", "stream_workers", "worker", "-l", "info"], tmp_path / "worker.log",
                   {"PRICEMYRIDE_METRICS_PORT": str(port), "PRICEMYRIDE_BATCH_SIZE": "1"})  # fmt: skip
    prometheus.register(Paths(world.state_path), "pricemyride-worker", "scrape-worker", f"127.0.0.1:{port}")
    try:
        ready = f"pricemyride_partitions_assigned{selector} * pricemyride_model_loaded{selector}"
        wait_for(lambda: prom_value(world, ready) == world.listings_partitions, 90, "a ready worker, scraped", 1)
        produce(BACKLOG)
        done = f"sum(pricemyride_listings_consumed_total{selector})"
        wait_for(lambda: (prom_value(world, done) or 0) >= BACKLOG, 240, "Prometheus to see the backlog scored", 2)
        assert prom_value(world, f"max_over_time(sum(pricemyride_consumer_lag_messages{selector})[5m:5s])") > 0
        assert prom_value(world, f"max_over_time(rate(pricemyride_listings_scored_total{selector}[20s])[5m:5s])") > 0
        wait_for(lambda: prom_value(world, f"sum(pricemyride_consumer_lag_messages{selector})") == 0, 30, "lag 0", 2)
        assert prom_value(world, f"pricemyride_model_version{selector}") >= 1
    finally:
        stop(worker)
    stopped = time.monotonic()
    wait_for(lambda: firing(world, "PriceMyRideWorkerDown", "scrape-worker"), 60, "PriceMyRideWorkerDown to fire", 1)
    assert time.monotonic() - stopped < 60


def test_a_worker_without_a_champion_waits_alive_and_not_ready(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    empty = {"PRICEMYRIDE_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}",
             "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
             "PRICEMYRIDE_METRICS_PORT": str(port), "PRICEMYRIDE_CONSUMER_GROUP": f"nochampion{RUN_ID}"}  # fmt: skip
    worker = spawn(["-m", "stream_workers", "worker", "-l", "info"], tmp_path / "worker.log", empty)
    try:
        wait_for(lambda: b"cannot start scoring" in (tmp_path / "worker.log").read_bytes(), 90, "the refusal")
        time.sleep(2)
        assert worker.poll() is None, "the worker waits for a champion instead of exiting"
        status, _, body = fetch(f"http://127.0.0.1:{port}/readyz")
        assert (status, body) == (503, "not ready: champion loaded, partitions assigned\n")
        assert "pricemyride_model_loaded 0.0" in fetch(f"http://127.0.0.1:{port}/metrics")[2]
        assert fetch(f"http://127.0.0.1:{port}/livez")[0] == 200
    finally:
        stop(worker)

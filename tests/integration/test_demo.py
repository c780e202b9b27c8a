"""The demo path: the same steps as `make demo`, without a terminal, in a world of its own."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from infra.services import APP_PROCESSES, Paths, pid_alive
from pricemyride.bootstrap import prepare
from pricemyride.settings import Settings
from tests.conftest import isolated_env
from tests.integration.conftest import ROOT, RUN_ID
from tests.integration.helpers import scalar, wait_for

pytestmark = pytest.mark.integration
PORT = 8062


def demo_login(settings: Settings) -> dict[str, str]:
    """The Authorization header for the demo's login, read where the demo keeps it."""
    fields = dict(
        line.split(": ", 1) for line in (settings.state_path / "dashboard-login.txt").read_text().splitlines()
    )
    token = base64.b64encode(f"{fields['user']}:{fields['password']}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def dashboard_table(port: int, login: dict[str, str]) -> dict[str, Any]:
    """What the Live page's refresh callback sends to the browser."""
    outputs = [
        ("latest", "data"),
        ("scored", "children"),
        ("dead-lettered", "children"),
        ("last-minute", "children"),
        ("empty-state", "children"),
        ("throughput-chart", "figure"),
    ]
    body = {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": "live-tick", "property": "n_intervals", "value": 1}],
        "changedPropIds": ["live-tick.n_intervals"],
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/_dash-update-component",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"} | login,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read())["response"])


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m infra.demo ...`, as `make demo` runs it."""
    return subprocess.run(
        [sys.executable, "-m", "infra.demo", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_starts_everything_and_the_dashboard_shows_predictions(
    services: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = isolated_env(f"d{RUN_ID}", tmp_path, PORT)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PRICEMYRIDE_DATA", raising=False)
    settings = Settings()
    prepare(settings)
    started = demo("start", "--rate", "50", "--metrics-port", "9181")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"dashboard   http://127.0.0.1:{PORT}/  (login: user 'analyst', password in " in started.stdout
        assert "built-in generator" in started.stdout
        assert "metrics     http://127.0.0.1:PORT/metrics  (worker :9181, monitor :9182, " in started.stdout
        assert f"prometheus  {settings.prometheus_url}" in started.stdout
        login = demo_login(settings)
        assert (settings.state_path / "dashboard-login.txt").stat().st_mode & 0o077 == 0  # owner only
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=10)
        assert refused.value.code == 401
        with urllib.request.urlopen("http://127.0.0.1:9181/readyz", timeout=10) as ready:
            assert ready.status == 200
        wait_for(lambda: scalar(settings, "SELECT count(*) FROM predictions") >= 20, 120, "20 demo predictions")
        table = dashboard_table(PORT, login)
        rows = table["latest"]["data"]
        assert rows, "the dashboard lists predictions"
        assert all(r["predicted_price"].startswith("$") and r["model_version"] == "v1" for r in rows)
        assert int(table["scored"]["children"].replace(",", "")) >= 20
        key = (settings.state_path / "api-key.txt").read_text().strip()
        assert (settings.state_path / "api-key.txt").stat().st_mode & 0o077 == 0
        assert key not in started.stdout  # where the key is, never the key
        asked = urllib.request.Request(f"http://127.0.0.1:{settings.api_port}/v1/valuations",
                                       json.dumps({"manufacturer": "toyota", "year": 2016}).encode(),
                                       {"Authorization": f"Bearer {key}"})  # fmt: skip
        with urllib.request.urlopen(asked, timeout=10) as answer:
            assert json.loads(answer.read())["model_version"] == 1
    finally:
        stopped = demo("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert all(pid_alive(Paths(settings.state_path).pid_file(n)) is None for n in APP_PROCESSES)

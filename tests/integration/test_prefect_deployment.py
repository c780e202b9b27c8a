"""The production retrain path: a real Prefect server, the `retrain` deployment on a process work pool,
a real Prefect worker running the flow run, and the retrain listener handing it a request."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from pricemyride.events import RetrainRequest
from pricemyride.settings import Settings
from retrainer.listener import handle
from tests.integration.helpers import free_port, query, scalar, wait_for
from training.deployment import deploy_flow
from training.model import TrainParams
from training.train import train

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def prefect_env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A Prefect server of its own (own home and database), its API behind basic auth as in compose; yields
    the environment its clients need."""
    port, auth = free_port(), f"pricemyride:{secrets.token_urlsafe(16)}"
    env = {**os.environ, "PREFECT_SERVER_API_AUTH_STRING": auth, "PREFECT_API_AUTH_STRING": auth,
           "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1",
           "PRICEMYRIDE_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts")}  # fmt: skip
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/health") or server.poll() is not None, 120, "Prefect")
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        for key in ("PRICEMYRIDE_MLFLOW_TRACKING_URI", "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT"):
            monkeypatch.setenv(key, env[key])
        refused = urllib.request.Request(f"http://127.0.0.1:{port}/api/deployments/filter", b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(refused, timeout=10)  # no auth string, no API
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_API_AUTH_STRING: auth}):
            yield env
    finally:
        stop(server)


def test_listener_runs_the_deployed_flow_on_a_prefect_worker_once_per_request(
    prefect_env: dict[str, str], data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = tmp_path / "craigslist_2020_small.csv"
    pd.read_csv(data_dir / "craigslist_2020.csv", nrows=3000).to_csv(small, index=False)
    champion = train(Settings(), small, params=TrainParams(max_rounds=100)).version
    deploy_flow(Settings(), "it")

    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as out:
        worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", Settings().prefect_work_pool],
                                  env=prefect_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    try:
        monkeypatch.setenv("PRICEMYRIDE_RETRAIN_DEPLOYMENT", "retrain/it")
        monkeypatch.setenv("PRICEMYRIDE_RETRAIN_TIMEOUT_S", "300")
        monkeypatch.setenv("PRICEMYRIDE_PROMOTION_MARGIN", "0.9")
        settings = Settings()
        now = datetime.now(UTC)
        request = RetrainRequest(requested_at=now, reason="realized_error", champion_version=champion,
                                 window_start=now, window_end=now)  # fmt: skip
        decision = handle(settings, request.model_dump_json().encode(), backoff=())
        assert decision is not None, worker_log.read_text()[-3000:]
        assert (decision.champion, decision.challenger) == (champion, champion + 1)
        recorded = "SELECT count(*) FROM model_events WHERE metrics->>'request_id' = %s"
        assert scalar(settings, recorded, [str(request.request_id)]) == 1, "the decision is read back by request id"
        # A challenger cannot beat the champion's MAE by 90%: rejected, the champion stays.
        assert decision.promote is False
        assert b"Completed" in worker_log.read_bytes()

        # The request delivered again (a listener restart before its commit): no second training.
        again = handle(settings, request.model_dump_json().encode(), backoff=())
        assert again == decision
        versions = MlflowClient(settings.tracking_uri).search_model_versions(f"name = '{settings.model_name}'")
        assert len(versions) == 2
        rows = query(settings, "SELECT kind FROM model_events WHERE metrics->>'request_id' = %s",
                     [str(request.request_id)])  # fmt: skip
        assert rows == [("rejected",)]
    finally:
        stop(worker)

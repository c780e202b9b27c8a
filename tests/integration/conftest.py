"""Session fixtures on the real services: Kafka and Postgres started by infra (or reused), a fresh test
database, topics and consumer group unique to this run, and a temporary MLflow registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.demo_drift import world_env
from pricemyride.bootstrap import prepare
from pricemyride.settings import Settings
from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real Craigslist samples (PRICEMYRIDE_TEST_DATA_DIR, default ../shared/data beside the repo)."""
    path = Path(os.environ.get("PRICEMYRIDE_TEST_DATA_DIR", ROOT.parent / "shared" / "data"))
    if not (path / "craigslist_2021.csv").is_file():
        pytest.fail(f"expected the Craigslist samples in {path} (set PRICEMYRIDE_TEST_DATA_DIR), found none")
    return path


@pytest.fixture(scope="session")
def services() -> None:
    """Kafka and Postgres answering (started by `python -m infra up` when they are not)."""
    subprocess.run([sys.executable, "-m", "infra", "up"], cwd=ROOT, check=True)


def isolated_env(prefix: str, folder: Path, dashboard_port: int, **overrides: str) -> dict[str, str]:
    """Environment for a world of its own (the same recipe as `make demo-drift`): a fresh database,
    topics, consumer groups, MLflow registry, Prefect home and state folder."""
    return world_env(Settings(), prefix, folder, PRICEMYRIDE_DASHBOARD_PORT=str(dashboard_port), **overrides)


@pytest.fixture(scope="session")
def settings(services: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for this run, exported to the environment so spawned workers see the same ones."""
    env = isolated_env(f"t{RUN_ID}", tmp_path_factory.mktemp("world"), 8061)
    (Path(env["PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT"])).mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        test_settings = Settings()
        prepare(test_settings)
        yield test_settings


@pytest.fixture(scope="session")
def champion(settings: Settings, data_dir: Path) -> int:
    """A real champion trained on real 2021 listings (small, so the suite stays quick)."""
    from training.model import TrainParams
    from training.train import train

    result = train(settings, data_dir / "craigslist_2021.csv", limit=6000, params=TrainParams(max_rounds=150))
    return result.version


@pytest.fixture(scope="session")
def worker(settings: Settings, champion: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One real faust scoring worker process; yields its log file."""
    log_file = tmp_path_factory.mktemp("worker") / "worker.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream_workers", "worker", "-l", "info"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: b"Worker ready" in log_file.read_bytes() or proc.poll() is not None, 90, "worker ready")
        if proc.poll() is not None:
            pytest.fail(f"worker exited with {proc.returncode}:\n{log_file.read_text()[-3000:]}")
        yield log_file
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

"""Session fixtures on the real services: Kafka and Postgres started by infra (or reused), a fresh test
database, topics and consumer group unique to this run, and a temporary MLflow registry."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pricemyride.bootstrap import prepare
from pricemyride.settings import Settings
from tests.conftest import isolated_env
from tests.integration.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = uuid.uuid4().hex[:8]


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


@pytest.fixture
def own_registry(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A registry of its own with another model name: the run's worker ignores its promotions."""
    monkeypatch.setenv("PRICEMYRIDE_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("PRICEMYRIDE_MODEL_NAME", f"own-{uuid.uuid4().hex[:6]}")
    return Settings()


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
        wait_for(lambda: b"scoring partitions" in log_file.read_bytes() or proc.poll() is not None, 90, "worker ready")
        if proc.poll() is not None:
            pytest.fail(f"worker exited with {proc.returncode}:\n{log_file.read_text()[-3000:]}")
        yield log_file
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

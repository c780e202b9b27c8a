"""Fixtures shared by the integration and browser tests: the real services and the Craigslist samples."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.harness import free_port, world_env
from pricemyride.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# A flow called in-process starts a temporary Prefect server, given 20 s by default: a busy 2-core CI machine
# once needed more (the Makefile sets the same)
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


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
    topics, consumer groups, MLflow registry, Prefect home and state folder; the valuation API on a free port
    (a demo beside the tests keeps its own ports)."""
    ports = {"PRICEMYRIDE_DASHBOARD_PORT": str(dashboard_port), "PRICEMYRIDE_API_PORT": str(free_port())}
    return world_env(Settings(), prefix, folder, **ports | overrides)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that restart the shared broker and database run last, after every other test."""
    items.sort(key=lambda item: item.get_closest_marker("chaos") is not None)

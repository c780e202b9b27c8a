"""The `make chaos` scenarios with smaller counts, on the real broker, database and registry: after
each, every listing offered is stored exactly once — scored or dead-lettered — and the checks hold.

These stop and restart the shared Postgres and Kafka, so they are marked ``chaos`` and run after every
other test (tests/conftest.py orders them last)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import chaos
from infra.services import Paths
from pricemyride.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base(services: None) -> Settings:
    """The settings the shared services were started with (before any world's overrides)."""
    return Settings(state_dir=ROOT / ".state")


@pytest.fixture(scope="module")
def registry(base: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("chaos-registry")
        env = chaos.shared_champion(base, folder)
        for key, value in env.items():
            patch.setenv(key, value)
        yield env


@pytest.fixture
def world(
    base: Settings, registry: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[chaos.World]:
    for key in list(os.environ):
        if key.startswith("PRICEMYRIDE_"):
            monkeypatch.setenv(key, os.environ[key])  # restored after the test
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    world = chaos.World(base, f"rel{uuid.uuid4().hex[:6]}", tmp_path, registry)
    try:
        yield world
    finally:
        for name in ("chaos-worker", "chaos-worker-a", "chaos-worker-b"):
            world.kill_worker(name)


def assert_exactly_once(outcome: chaos.Outcome) -> None:
    assert outcome.produced > 0
    assert (outcome.lost, outcome.duplicated) == (0, 0), outcome
    assert (outcome.output_lost, outcome.output_duplicated) == (0, 0), outcome
    assert outcome.scored + outcome.dead_lettered == outcome.produced or outcome.scenario == "bad input", outcome
    failed = [name for name, ok in outcome.checks.items() if not ok]
    assert failed == [], outcome


def test_bad_input_is_dead_lettered_with_reasons_and_the_worker_keeps_going(world: chaos.World) -> None:
    outcome = chaos.bad_input(world, valid=1_500, bad=400)
    assert_exactly_once(outcome)
    assert outcome.dead_lettered >= 400


def test_a_worker_killed_twice_loses_and_doubles_nothing(world: chaos.World) -> None:
    outcome = chaos.worker_crash(world, n=3_000, kills=2)  # make chaos: 100,000 listings, three kills
    assert_exactly_once(outcome)
    assert outcome.crashes == 2


def test_a_database_outage_is_waited_out(world: chaos.World, base: Settings) -> None:
    outcome = chaos.database_outage(world, base, Paths(base.state_path), n=3_000, outage_s=6, rate=500)
    assert_exactly_once(outcome)
    assert outcome.recovery_s is not None


@pytest.mark.long  # `make chaos`; make test's broker fault is the cluster's leader kill (test_cluster)
def test_a_broker_restart_is_recovered_from(world: chaos.World, base: Settings) -> None:
    outcome = chaos.broker_restart(world, base, Paths(base.state_path), n=3_000, rate=500)
    assert_exactly_once(outcome)


def test_registry_trouble_keeps_the_current_champion_serving(world: chaos.World, tmp_path: Path) -> None:
    outcome = chaos.registry_trouble(world, tmp_path, n=2_000, rate=250)
    assert_exactly_once(outcome)


def test_two_workers_share_the_partitions_and_one_takes_over(world: chaos.World) -> None:
    outcome = chaos.scale_out(world, n=4_000, rate=400)
    assert_exactly_once(outcome)

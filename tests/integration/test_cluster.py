"""Cluster scenarios of `make chaos` with smaller counts, on a real 3-broker KRaft cluster (replication 3,
min.insync.replicas 2) started for this module, and workers writing their outputs in Kafka transactions.

After each, every listing offered is stored once in Postgres and is once on the read_committed output
topics. Marked ``chaos``: they run after every other test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from infra import chaos, chaos_cluster
from infra.kafka_cluster import KafkaCluster
from pricemyride.kafka import kafka_python_options
from pricemyride.settings import Settings
from tests.integration.test_reliability import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("chaos-worker", *(f"chaos-worker-{c}" for c in "abcd"))


@pytest.fixture(scope="module")
def base(services: None) -> Settings:
    return Settings(state_dir=ROOT / ".state")


@pytest.fixture(scope="module")
def cluster(base: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    with chaos_cluster.chaos_cluster(base, tmp_path_factory.mktemp("cluster"), first_port=29092) as started:
        yield started


@pytest.fixture(scope="module")
def registry(base: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with pytest.MonkeyPatch.context() as patch:
        env = chaos.shared_champion(base, tmp_path_factory.mktemp("cluster-registry"))
        for key, value in env.items():
            patch.setenv(key, value)
        yield env


def make_world(base: Settings, registry: dict[str, str], folder: Path, env: dict[str, str]) -> Iterator[chaos.World]:
    """A world on the cluster; the environment it sets (the cluster's bootstrap…) is undone afterwards."""
    saved = os.environ.copy()
    world = chaos.World(base, f"clu{uuid.uuid4().hex[:6]}", folder, registry, **env)
    try:
        yield world
    finally:
        for name in WORKERS:
            world.kill_worker(name)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def world(base: Settings, registry: dict[str, str], cluster: KafkaCluster, tmp_path: Path) -> Iterator[chaos.World]:
    yield from make_world(base, registry, tmp_path, chaos_cluster.cluster_env(cluster))


def test_topics_are_replicated_three_times_with_two_in_sync_required(world: chaos.World) -> None:
    admin = KafkaAdminClient(**kafka_python_options(world.settings))
    try:
        topics = admin.describe_topics([world.settings.listings_topic, world.settings.predictions_topic])
        assert {len(p["replica_nodes"]) for t in topics for p in t["partitions"]} == {3}
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, world.settings.listings_topic)])
        found = str(configs)
        assert "'min.insync.replicas': {'value': '2'" in found
        assert "'unclean.leader.election.enable': {'value': 'false'" in found
    finally:
        admin.close()


def replicas_of_internal_topics(settings: Settings) -> set[int]:
    """Replica counts of the broker's own topics (created on first use: group offsets, transactions)."""
    admin = KafkaAdminClient(**kafka_python_options(settings))
    try:
        internal = admin.describe_topics(["__consumer_offsets", "__transaction_state"])
        assert all(t["partitions"] for t in internal), internal
        return {len(p["replica_nodes"]) for t in internal for p in t["partitions"]}
    finally:
        admin.close()


def test_the_leader_broker_killed_mid_stream_loses_and_doubles_nothing(
    world: chaos.World, cluster: KafkaCluster
) -> None:
    outcome = chaos_cluster.leader_kill(world, cluster, n=3_000, rate=300)
    assert_exactly_once(outcome)
    assert replicas_of_internal_topics(world.settings) == {3}


# The other cluster scenarios — two of three brokers down (writes wait, nothing vanishes), a rolling restart of
# every broker, a worker SIGKILLed three times, one to four workers joining and leaving over eight partitions —
# run in `make chaos` (``infra.chaos_cluster.run_all``, 30,000 to 100,000 listings at 1,000/s). The leader kill
# above is their one fast case here; a worker killed twice and two workers sharing the partitions have theirs on
# the single broker (test_reliability), to keep `make test` within CI's 20 minutes.

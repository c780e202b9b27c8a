"""The `make chaos` scenarios on a 3-broker cluster (replication 3, min.insync.replicas 2), with the workers'
exactly-once outputs. `make chaos` starts the cluster itself, beside the single broker, on ports of its own.

Each scenario is audited as the single-broker ones are — against the ``listings`` topic, in Postgres, and
on the read_committed ``price-predictions`` and ``listings.dlq`` (lost and duplicated must all be 0):

1. leader kill: SIGKILL the broker that leads most ``listings`` partitions mid-stream, producer sending;
2. two of three down: SIGKILL two brokers for 20 s (no quorum, no ISR of 2: writes wait), then restart them;
3. rolling restart: stop and restart each broker in turn during a stream, waiting for full replication;
4. worker crash: SIGKILL the worker three times — its open transactions are aborted, not doubled;
5. scale out: 1 → 4 worker processes joining and leaving during a stream over 8 partitions.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from kafka import KafkaAdminClient

from infra.chaos import ASSIGNED, Outcome, World, timed, valid_events, worker_crash
from infra.kafka_cluster import KafkaCluster, KafkaNode, admin_login
from infra.services import Paths, resolve_kafka_jars
from pricemyride.kafka import kafka_python_options
from pricemyride.settings import Settings

log = logging.getLogger("chaos")
CLUSTER_FIRST_PORT = 19092
RESUME_TARGET_S = 15.0


@contextlib.contextmanager
def chaos_cluster(base: Settings, folder: Path, first_port: int = CLUSTER_FIRST_PORT) -> Iterator[KafkaCluster]:
    """A 3-node cluster of its own under ``folder`` (the Kafka jars shared with the main state folder)."""
    shared = Paths(base.state_path)
    resolve_kafka_jars(shared)
    paths = Paths(folder / "cluster")
    paths.state.mkdir(parents=True, exist_ok=True)
    if not paths.kafka_jars.exists():
        paths.kafka_jars.symlink_to(shared.kafka_jars, target_is_directory=True)
    cluster = KafkaCluster(paths, "127.0.0.1", first_port, 3, admin_login(base))
    cluster.start()
    try:
        yield cluster
    finally:
        for node in cluster.nodes:
            cluster.kill_node(node)  # its data is thrown away with the folder: no need for a clean stop


def cluster_env(cluster: KafkaCluster, partitions: int = 4) -> dict[str, str]:
    return {"PRICEMYRIDE_KAFKA_BOOTSTRAP": cluster.bootstrap, "PRICEMYRIDE_KAFKA_BROKERS": str(cluster.size),
            "PRICEMYRIDE_LISTINGS_PARTITIONS": str(partitions),
            "PRICEMYRIDE_PROCESSING_GUARANTEE": "exactly_once"}  # fmt: skip


def leaders(settings: Settings) -> Counter[int]:
    """How many ``listings`` partitions each broker leads."""
    admin = KafkaAdminClient(**kafka_python_options(settings))
    try:
        (topic,) = admin.describe_topics([settings.listings_topic])
        return Counter(int(p["leader_id"]) for p in topic["partitions"])
    finally:
        admin.close()


def fully_replicated(settings: Settings) -> bool:
    """Every partition of the world's topics has all its replicas in sync."""
    admin = KafkaAdminClient(**kafka_python_options(settings))
    try:
        topics = admin.describe_topics([settings.listings_topic, settings.predictions_topic, settings.dlq_topic])
        return all(len(p["isr_nodes"]) == len(p["replica_nodes"]) for t in topics for p in t["partitions"])
    except Exception:  # noqa: BLE001 - a cluster mid-restart answers with errors: not replicated yet
        return False
    finally:
        admin.close()


def wait_replicated(cluster: KafkaCluster, settings: Settings, timeout_s: float = 120) -> None:
    cluster.wait_complete(timeout_s)
    deadline = time.monotonic() + timeout_s
    while not fully_replicated(settings):
        if time.monotonic() > deadline:
            raise TimeoutError(f"expected every replica in sync within {timeout_s:.0f} s")
        time.sleep(0.5)


def streamed_fault(world: World, outcome: Outcome, n: int, rate: float, fault: Callable[[], float]) -> Outcome:
    """Stream ``n`` listings at ``rate``; a third of the way in run ``fault`` (it returns when the stream
    should be flowing again, monotonic) and time the recovery from then to the next stored prediction."""
    world.start_worker()
    world.wait_scoring()
    producer = world.produce_in_background(valid_events(n, 11, outcome.scenario.replace(" ", "-")), rate)
    world.wait_rows(n // 3, 300)
    outcome.checks["the fault began mid-stream"] = producer.is_alive()
    resumed_from = fault()
    before = world.stored_rows()
    outcome.recovery_s = round(world.wait_progress(before, n, 180) - resumed_from, 1)
    producer.join()
    outcome.checks["all handled in time"] = world.wait_handled(n, 300)
    outcome.checks["producer lost nothing"] = world.producer_errors == 0
    outcome.checks["worker never stopped"] = world.worker_alive()
    world.stop_workers()
    return world.audit(outcome)


@timed
def leader_kill(world: World, cluster: KafkaCluster, n: int, rate: float) -> Outcome:
    outcome = Outcome("cluster: leader broker SIGKILL")
    victim: list[KafkaNode] = []

    def fault() -> float:
        node_id, led = leaders(world.settings).most_common(1)[0]
        victim.append(cluster.node(node_id))
        outcome.notes.append(f"killed broker {node_id}, leader of {led} of the listings partitions")
        cluster.kill_node(victim[0])
        return time.monotonic()

    streamed_fault(world, outcome, n, rate, fault)
    outcome.checks[f"stream resumed within {RESUME_TARGET_S:.0f} s"] = (outcome.recovery_s or 1e9) <= RESUME_TARGET_S
    cluster.launch(victim[0])
    wait_replicated(cluster, world.settings)
    return outcome


@timed
def two_down(world: World, cluster: KafkaCluster, n: int, rate: float, down_s: float) -> Outcome:
    outcome = Outcome("cluster: two of three brokers down")

    def fault() -> float:
        stopped = cluster.nodes[1:]
        for node in stopped:
            cluster.kill_node(node)
        time.sleep(down_s)
        for node in stopped:
            cluster.launch(node)
        return time.monotonic()

    streamed_fault(world, outcome, n, rate, fault)
    wait_replicated(cluster, world.settings)
    return outcome


@timed
def rolling_restart(world: World, cluster: KafkaCluster, n: int, rate: float) -> Outcome:
    outcome = Outcome("cluster: rolling restart")

    def fault() -> float:
        for node in cluster.nodes:
            cluster.stop_node(node)  # SIGTERM: controlled shutdown, leadership moves first
            cluster.launch(node)
            wait_replicated(cluster, world.settings)  # the next one only once every replica is back in sync
        return time.monotonic()

    return streamed_fault(world, outcome, n, rate, fault)


@timed
def scale_out_to_four(world: World, n: int, rate: float) -> Outcome:
    """Workers a, b, c, d join one by one during the stream, then d, c, b leave; a finishes it."""
    names = [f"chaos-worker-{c}" for c in "abcd"]
    outcome = Outcome("cluster: scale out 1 → 4 → 1 over 8 partitions")
    world.start_worker(names[0])
    world.wait_scoring(names[0])
    producer = world.produce_in_background(valid_events(n, 12, "scale4"), rate)
    steps = [*(("join", w) for w in names[1:]), *(("leave", w) for w in reversed(names[1:]))]
    during = 0
    for i, (action, name) in enumerate(steps, start=1):
        world.wait_rows(n * i // (len(steps) + 2), 300)
        during += producer.is_alive()
        if action == "join":
            world.start_worker(name)
            world.wait_scoring(name)
        else:
            world.stop_workers(name)
    outcome.checks["workers joined while the stream flowed"] = during > 0
    outcome.notes.append(f"{during} of the {len(steps)} joins and leaves began while the producer was sending")
    producer.join()
    outcome.checks["all handled in time"] = world.wait_handled(n, 300, worker=None)
    outcome.checks["every worker was given partitions"] = all(ASSIGNED.search(world.log_text(w)) for w in names)
    outcome.checks["the first worker kept going"] = world.worker_alive(names[0])
    outcome.checks["producer lost nothing"] = world.producer_errors == 0
    world.stop_workers(names[0])
    return world.audit(outcome)


def run_all(base: Settings, folder: Path, world: Callable[..., World], count: Callable[[int], int]) -> list[Outcome]:
    """Every cluster scenario, each in a world of its own on one cluster started here."""
    with chaos_cluster(base, folder) as cluster:
        env = cluster_env(cluster)
        return [
            leader_kill(world("c-leader", **env), cluster, n=count(30_000), rate=1_000),
            two_down(world("c-two", **env), cluster, n=count(30_000), rate=1_000, down_s=20),
            rolling_restart(world("c-rolling", **env), cluster, n=count(60_000), rate=1_000),
            worker_crash(world("c-crash", **env), n=count(100_000), scenario="cluster: worker SIGKILL ×3"),
            scale_out_to_four(world("c-scale", **cluster_env(cluster, partitions=8)), n=count(60_000), rate=1_000),
        ]

"""The single-broker failure scenarios of `make chaos` (run by ``infra.chaos_run``), on the real broker,
database and registry.

Every scenario runs in a world of its own (database, topics, consumer group) and ends with the same
audit: every message in its ``listings`` topic is either a stored prediction (valid listings, by id) or
a stored dead letter (invalid ones, by Kafka coordinate) — ``lost`` and ``duplicated`` must be 0.

1. bad input: malformed and hostile events mixed into valid ones; the worker never stops;
2. worker crash: SIGKILL the scoring worker three times during a run, restart it each time;
3. database outage: stop Postgres mid-run, start it again;
4. broker restart: restart Kafka mid-run; producer and worker recover;
5. registry trouble: a corrupt version announced, then the MLflow server down when a version is announced;
6. scale out: two workers share four partitions; one leaves and the other takes over;
7. worker crash in shadow: as 2, with a second version scoring in shadow — each listing's shadow price is stored
   once, in the same transaction as the champion's, and never published.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from kafka import KafkaProducer
from mlflow import MlflowClient

from infra.harness import WORKER_ARGS, borrow_champion, free_port, mlflow_server, rows, spawn, world_env
from infra.kafka_cluster import start_kafka
from infra.services import Paths, pid_alive, start_postgres, stop_pid, stop_postgres
from pricemyride.bootstrap import prepare
from pricemyride.errors import InvalidListing
from pricemyride.generator import generate_listings
from pricemyride.kafka import kafka_python_options
from pricemyride.parsing import MAX_EVENT_BYTES, parse_listing
from pricemyride.settings import Settings
from pricemyride.storage import ModelEventKind as EventKind
from pricemyride.topics import read_topic, uncommitted
from producers.replay import row_event
from training.model import TrainParams
from training.promotion import model_update, promote, publish_update, record_event
from training.shadow import Role, end_running_shadow, start_shadow
from training.train import train

log = logging.getLogger("chaos")
ASSIGNED = re.compile(r"scoring partitions \[\d")  # a worker's log line on each assignment that is not empty


@dataclass
class Outcome:
    """One scenario's audit, as it goes into reports/reliability.json."""

    scenario: str
    produced: int = 0
    scored: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duplicated: int = 0
    output_lost: int = 0  # on the read_committed output topics: a listing with no prediction / dead letter there
    output_duplicated: int = 0  # … or with more than one
    crashes: int = 0
    recovery_s: float | None = None
    seconds: float = 0.0
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        counts = (self.lost, self.duplicated, self.output_lost, self.output_duplicated)
        return counts == (0, 0, 0, 0) and all(self.checks.values())


# --- events ------------------------------------------------------------------------------------


def valid_events(n: int, seed: int, prefix: str) -> list[tuple[bytes | None, bytes]]:
    """``n`` generated listings (the generator's own dirt included) as (key, value) pairs."""
    now = datetime.now(UTC)
    out = []
    records: list[dict[str, Any]] = generate_listings(n, seed=seed).to_dict("records")  # type: ignore[assignment]
    for i, row in enumerate(records):
        event = row_event(row, "chaos", f"{prefix}-{i}", now)
        event["id"] = f"{prefix}-{i}"
        out.append((event["id"].encode(), json.dumps(event, default=str).encode()))
    return out


def bad_events(n: int, seed: int, prefix: str) -> list[tuple[bytes | None, bytes]]:
    """``n`` malformed or hostile events, cycling through the kinds a listing site can send."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    kinds: list[Callable[[int], tuple[bytes | None, bytes]]] = [
        lambda i: (f"{prefix}-x{i}".encode(), b"this is not json {"),
        lambda i: (f"{prefix}-x{i}".encode(), json.dumps({"id": f"{prefix}-x{i}", "year": "last year"}).encode()),
        lambda i: (f"{prefix}-x{i}".encode(), json.dumps({"manufacturer": "ford", "year": 2015}).encode()),
        lambda i: (f"{prefix}-x{i}".encode(), json.dumps({"id": f"{prefix}-x{i}", "admin": True}).encode()),
        lambda i: (f"{prefix}-x{i}".encode(), json.dumps({"id": f"{prefix}-x{i}", "odometer": -5}).encode()),
        lambda i: (f"{prefix}-x{i}".encode(),
                   json.dumps({"id": f"{prefix}-x{i}", "model": "A" * (MAX_EVENT_BYTES + 10)}).encode()),
        lambda i: (f"{prefix}-x{i}".encode(), b'{"id": "\xff\xfe", "price": 1}'),
        lambda i: (None, b"[1, 2, 3]"),
        lambda i: (f"{prefix}-x{i}".encode(), json.dumps({"id": f"{prefix}-x{i}", "price": "NaN"}).encode()),
        lambda i: (f"{prefix}-x{i}".encode(), json.dumps({"id": "'; DROP TABLE predictions; --\x00"}).encode()),
    ]  # fmt: skip
    return [kinds[rng.randrange(len(kinds))](i) for i in range(n)]


def expected_valid(value: bytes | None) -> str | None:
    """The listing id the worker will store for this value, or None if it must be dead-lettered."""
    try:
        return parse_listing(value).id  # type: ignore[arg-type]
    except InvalidListing:
        return None


# --- a world -----------------------------------------------------------------------------------


class World:
    """One scenario's isolated database, topics and consumer group, sharing the champion registry."""

    def __init__(self, base: Settings, name: str, folder: Path, registry: dict[str, str], **overrides: str) -> None:
        os.environ.update(world_env(base, name, folder / name) | registry | overrides)
        self.settings = Settings()
        prepare(self.settings)
        self.champion = borrow_champion(self.settings)
        self.paths = Paths(self.settings.state_path)
        self.producer_errors = 0

    def start_worker(self, name: str = "chaos-worker") -> int:
        return spawn(name, WORKER_ARGS, self.paths)

    def wait_scoring(self, *names: str, timeout_s: float = 90) -> None:
        """Wait until each worker holds partitions (its log line on an assignment that is not empty), so a
        fault injected after N rows hits a stream still flowing, not a backlog drained in one go."""
        names = names or ("chaos-worker",)
        deadline = time.monotonic() + timeout_s
        while not all(ASSIGNED.search(self.log_text(w)) for w in names):
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {', '.join(names)} to hold partitions within {timeout_s:.0f} s")
            time.sleep(0.2)

    def kill_worker(self, name: str = "chaos-worker") -> None:
        pid = pid_alive(self.paths.pid_file(name))
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while pid_alive(self.paths.pid_file(name)):
                time.sleep(0.1)
        self.paths.pid_file(name).unlink(missing_ok=True)

    def stop_workers(self, *names: str) -> None:
        for name in names or ("chaos-worker",):
            stop_pid(name, self.paths, timeout_s=20)

    def worker_alive(self, name: str = "chaos-worker") -> bool:
        return pid_alive(self.paths.pid_file(name)) is not None

    def log_text(self, name: str = "chaos-worker") -> str:
        path = self.paths.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def produce(self, events: list[tuple[bytes | None, bytes]], rate: float | None = None) -> None:
        """Send with acks=all and retries (as the project's producer does); count what never made it."""
        producer = KafkaProducer(**kafka_python_options(self.settings), acks="all", enable_idempotence=True,
                                 linger_ms=5, retries=2**31 - 1,
                                 retry_backoff_ms=500, delivery_timeout_ms=180_000, max_request_size=2**21)  # fmt: skip
        failed: list[BaseException] = []
        started = time.monotonic()
        for i, (key, value) in enumerate(events):
            producer.send(self.settings.listings_topic, key=key, value=value).add_errback(failed.append)
            if rate:
                ahead = started + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush(timeout=240)
        producer.close()
        self.producer_errors += len(failed)

    def produce_in_background(self, events: list[tuple[bytes | None, bytes]], rate: float) -> threading.Thread:
        thread = threading.Thread(target=self.produce, args=(events, rate), name="chaos-producer", daemon=True)
        thread.start()
        return thread

    def handled(self) -> int:
        stored = rows(self.settings, "SELECT (SELECT count(DISTINCT listing_id) FROM predictions), "
                                     "(SELECT count(*) FROM dead_letters)")[0]  # fmt: skip
        return int(stored[0]) + int(stored[1])

    def stored_rows(self) -> int:
        return int(rows(self.settings, "SELECT count(*) FROM predictions")[0][0])

    def wait_handled(self, expected: int, timeout_s: float, worker: str | None = "chaos-worker") -> bool:
        """Wait until ``expected`` listings are stored and the group has committed every offset (with
        transactional outputs, the commit is what makes a batch's outputs visible to read_committed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # the database may be down on purpose
                if self.handled() >= expected and uncommitted(self.settings) == 0:
                    return True
            time.sleep(0.5)
        return False

    def wait_progress(self, before: int, expected: int, timeout_s: float) -> float:
        """Wait until one more prediction than ``before`` is stored, or all ``expected`` are handled;
        return when (monotonic)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if self.stored_rows() > before or self.handled() >= expected:
                    return time.monotonic()
            time.sleep(0.2)
        raise TimeoutError(f"expected progress past {before} stored predictions within {timeout_s:.0f} s")

    def wait_rows(self, count: int, timeout_s: float) -> float:
        """Wait until at least ``count`` prediction rows are stored; return when (monotonic)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if self.stored_rows() >= count:
                    return time.monotonic()
            time.sleep(0.2)
        raise TimeoutError(f"expected {count} stored predictions within {timeout_s:.0f} s")

    def audit(self, outcome: Outcome) -> Outcome:
        """Count against the topic itself: every message offered must be stored exactly once, and be on the
        output topics exactly once as a read_committed consumer sees them."""
        messages = read_topic(self.settings, self.settings.listings_topic, timeout_s=10)
        scored_ids = {r[0] for r in rows(self.settings, "SELECT listing_id FROM predictions")}
        dead = {(int(r[0]), int(r[1])) for r in rows(self.settings, 'SELECT partition, "offset" FROM dead_letters')}
        extra_rows = rows(self.settings, "SELECT count(*) - count(DISTINCT listing_id) FROM predictions")[0][0]
        valid_ids, invalid = expected_outputs(messages)
        outcome.produced, outcome.scored, outcome.dead_lettered = len(messages), len(scored_ids), len(dead)
        outcome.lost = len(invalid - dead) + len(valid_ids - scored_ids)
        outcome.duplicated = int(extra_rows) + len(scored_ids - valid_ids)
        self.audit_outputs(outcome, valid_ids, invalid)
        if self.producer_errors:
            outcome.notes.append(f"{self.producer_errors} sends failed at the producer (never offered)")
        return outcome

    def audit_outputs(self, outcome: Outcome, valid_ids: set[str], invalid: set[tuple[int, int]]) -> None:
        """The read_committed view of ``price-predictions`` (by listing id) and ``listings.dlq`` (by the
        rejected message's coordinate): each expected output once."""
        published = Counter(output_id(m.value) for m in read_topic(self.settings, self.settings.predictions_topic))
        dlq = Counter(dlq_coordinate(m.headers) for m in read_topic(self.settings, self.settings.dlq_topic))
        outcome.output_lost = len(valid_ids - published.keys()) + len(invalid - dlq.keys())
        outcome.output_duplicated = sum(n - 1 for n in published.values()) + sum(n - 1 for n in dlq.values())


def expected_outputs(messages: list[Any]) -> tuple[set[str], set[tuple[int, int]]]:
    """(ids of the valid listings, coordinates of the invalid messages) among ``messages``."""
    valid_ids, invalid = set(), set()
    for message in messages:
        listing_id = expected_valid(message.value)
        if listing_id is None:
            invalid.add((message.partition, message.offset))
        else:
            valid_ids.add(listing_id)
    return valid_ids, invalid


def output_id(value: bytes) -> str:
    return str(json.loads(value)["listing_id"])


def dlq_coordinate(headers: list[tuple[str, bytes]] | None) -> tuple[int, int]:
    found = dict(headers or [])
    return int(found["dlq.partition"]), int(found["dlq.offset"])


def timed(scenario: Callable[..., Outcome]) -> Callable[..., Outcome]:
    def run(*args: Any, **kwargs: Any) -> Outcome:
        started = time.monotonic()
        outcome = scenario(*args, **kwargs)
        outcome.seconds = round(time.monotonic() - started, 1)
        log.warning("%s: %s", outcome.scenario, json.dumps(asdict(outcome) | {"ok": outcome.ok}))
        return outcome

    return run


# --- scenarios ---------------------------------------------------------------------------------


@timed
def bad_input(world: World, valid: int, bad: int) -> Outcome:
    events = valid_events(valid, 1, "ok") + bad_events(bad, 2, "bad")
    random.Random(3).shuffle(events)  # noqa: S311 - reproducible test data
    world.start_worker()
    world.produce(events)
    outcome = Outcome("bad input")
    done = world.wait_handled(len(events), 300)
    outcome.checks["all handled in time"] = done
    outcome.checks["worker still running"] = world.worker_alive()
    reasons = rows(world.settings, "SELECT count(*) FROM dead_letters WHERE reason = ''")[0][0]
    outcome.checks["every dead letter has a reason"] = reasons == 0
    dlq = read_topic(world.settings, world.settings.dlq_topic, timeout_s=10)
    with_reason = sum(any(k == "dlq.reason" and v for k, v in (m.headers or [])) for m in dlq)
    outcome.checks["every DLQ message carries dlq.reason"] = with_reason == len(dlq) > 0
    world.stop_workers()
    outcome = world.audit(outcome)
    outcome.checks["every bad event dead-lettered"] = outcome.dead_lettered >= bad
    return outcome


@timed
def worker_crash(world: World, n: int, kills: int = 3, scenario: str = "worker crash") -> Outcome:
    outcome = killed_and_restarted(world, Outcome(scenario), n, kills, seed=4)
    world.stop_workers()
    return world.audit(outcome)


def killed_and_restarted(world: World, outcome: Outcome, n: int, kills: int, seed: int) -> Outcome:
    """``n`` listings in the topic, the worker SIGKILLed ``kills`` times while it scores them, restarted each time."""
    world.produce(valid_events(n, seed, "crash"))
    world.start_worker()
    recoveries = []
    for k in range(1, kills + 1):
        world.wait_rows(n * k // (kills + 1), 300)
        world.kill_worker()
        outcome.crashes += 1
        before = world.stored_rows()
        restarted = time.monotonic()
        world.start_worker()
        recoveries.append(world.wait_progress(before, n, 120) - restarted)
    outcome.recovery_s = round(max(recoveries), 1)
    outcome.checks["all handled in time"] = world.wait_handled(n, 300)
    return outcome


@timed
def shadow_crash(world: World, n: int, kills: int = 3) -> Outcome:
    """Issue 27: the worker killed while a second version scores in shadow (as the offline gate starts one)."""
    if world.champion is None:
        raise RuntimeError("expected a champion in the shared registry, found none")
    spare = train(world.settings, None, limit=3000, params=TrainParams(max_rounds=60, seed=7), promote=False).version
    start_shadow(world.settings, spare, world.champion, Role.CHALLENGER, "chaos: a version in shadow", {})
    outcome = killed_and_restarted(world, Outcome("worker crash in shadow"), n, kills, seed=9)
    world.stop_workers()
    end_running_shadow(world.settings, "replaced", "chaos: the scenario is over")  # the registry is shared
    shadow = rows(world.settings, "SELECT count(*), "
                                  "count(*) FILTER (WHERE shadow_version <> %s OR champion_version <> %s) "
                                  "FROM shadow_predictions", [spare, world.champion])[0]  # fmt: skip
    scored = rows(world.settings, "SELECT count(DISTINCT (source, listing_id)) FROM predictions")[0][0]
    published = {json.loads(m.value)["model_version"] for m in read_topic(world.settings,
                                                                        world.settings.predictions_topic)}  # fmt: skip
    outcome.checks["every scored listing has its shadow price"] = shadow[0] == scored > 0  # one each: the key
    outcome.checks["shadow rows name the shadow and the champion"] = shadow[1] == 0
    outcome.checks["only the champion's prices published"] = published == {world.champion}
    outcome.checks["no shadow dropped"] = rows(world.settings, "SELECT count(*) FROM shadow_drops")[0][0] == 0
    outcome.notes.append(f"{shadow[0]:,} shadow prices of version {spare} beside version {world.champion}")
    return world.audit(outcome)


def outage(world: World, outcome: Outcome, events: list[tuple[bytes | None, bytes]], rate: float,
           stop: Callable[[], None], start: Callable[[], None], pause_s: float = 0.0) -> Outcome:  # fmt: skip
    """Stream ``events``; a third of the way in, ``stop`` a service, wait ``pause_s``, ``start`` it again;
    the recovery is timed from the start."""
    world.start_worker()
    world.wait_scoring()
    producer = world.produce_in_background(events, rate)
    world.wait_rows(len(events) // 3, 300)
    outcome.checks["the fault began mid-stream"] = producer.is_alive()
    stop()
    time.sleep(pause_s)
    started = time.monotonic()
    start()
    before = world.stored_rows()
    outcome.recovery_s = round(world.wait_progress(before, len(events), 180) - started, 1)
    producer.join()
    outcome.checks["all handled in time"] = world.wait_handled(len(events), 300)
    outcome.checks["worker never stopped"] = world.worker_alive()
    return outcome


@timed
def database_outage(world: World, base: Settings, infra: Paths, n: int, outage_s: float, rate: float) -> Outcome:
    outcome = outage(world, Outcome("database outage"), valid_events(n, 5, "db"), rate,
                     stop=lambda: stop_postgres(infra), start=lambda: start_postgres(base, infra),
                     pause_s=outage_s)  # fmt: skip
    outcome.checks["worker backed off and retried"] = "retrying in" in world.log_text()
    world.stop_workers()
    return world.audit(outcome)


@timed
def broker_restart(world: World, base: Settings, infra: Paths, n: int, rate: float) -> Outcome:
    outcome = outage(world, Outcome("broker restart"), valid_events(n, 6, "broker"), rate,
                     stop=lambda: stop_pid("kafka", infra, timeout_s=60),
                     start=lambda: start_kafka(base, infra))  # fmt: skip
    outcome.checks["producer lost nothing"] = world.producer_errors == 0
    world.stop_workers()
    return world.audit(outcome)


def register_corrupt_version(settings: Settings, version: int) -> int:
    """A new version whose pickled model is garbage (its MLmodel file is intact)."""
    client = MlflowClient(settings.tracking_uri)
    source = client.get_model_version(settings.model_name, str(version)).source
    local = Path(mlflow.artifacts.download_artifacts(source, dst_path=tempfile.mkdtemp(prefix="corrupt-")))
    for pickled in local.glob("*.pkl"):
        pickled.write_bytes(b"this is not a pickle")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(local), "model")
    created = client.create_model_version(settings.model_name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    return int(created.version)


def announce(settings: Settings, version: int, reason: str) -> None:
    """Record ``version`` as the gate's promotion and publish its ModelUpdate without moving the alias: the
    crown check passes, so what the worker meets is the registry itself (a version that must be refused)."""
    record_event(settings, EventKind.PROMOTED, version, None, reason, {})
    publish_update(settings, model_update(settings, version, reason))


@timed
def registry_trouble(world: World, folder: Path, n: int, rate: float) -> Outcome:
    """The world's registry is a real MLflow server here, so it can be taken away."""
    port = free_port()
    os.environ |= {"PRICEMYRIDE_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
                   "PRICEMYRIDE_REGISTRY_POLL_S": "3", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}  # fmt: skip
    os.environ.pop("PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT", None)
    settings = world.settings = Settings()
    outcome = Outcome("registry trouble")
    with mlflow_server(folder / "mlflow-server", port) as server:
        first = train(settings, None, limit=3000, params=TrainParams(max_rounds=80)).version
        spare = train(settings, None, limit=3000, params=TrainParams(max_rounds=60), promote=False).version
        corrupt = register_corrupt_version(settings, first)
        world.start_worker()
        world.wait_scoring()
        producer = world.produce_in_background(valid_events(n, 7, "reg"), rate)
        world.wait_rows(n // 4, 300)
        promote(settings, corrupt, "chaos: a corrupt version")  # recorded and announced: the load itself fails
        world.wait_rows(n // 2, 300)
        os.killpg(server.pid, signal.SIGKILL)  # the registry goes away …
        server.wait()
        announce(settings, spare, "chaos: announced while MLflow is down")  # … and a version is announced
        world.wait_rows(3 * n // 4, 300)
        producer.join()
        outcome.checks["all handled in time"] = world.wait_handled(n, 300)
    text = world.log_text()
    outcome.checks["refused the corrupt version, said why"] = f"cannot load version {corrupt}" in text
    outcome.checks["could not reach the registry, said why"] = f"cannot load version {spare}" in text
    served = {int(r[0]) for r in rows(settings, "SELECT DISTINCT model_version FROM predictions")}
    outcome.checks["kept serving the champion it had"] = served == {first}
    outcome.checks["worker never stopped"] = world.worker_alive()
    world.stop_workers()
    return world.audit(outcome)


@timed
def scale_out(world: World, n: int, rate: float) -> Outcome:
    names = ("chaos-worker-a", "chaos-worker-b")
    for name in names:
        world.start_worker(name)
    world.wait_scoring(*names)  # both in the group before the first listing
    producer = world.produce_in_background(valid_events(n, 8, "scale"), rate)
    outcome = Outcome("scale out")
    world.wait_rows(n // 3, 300)
    assigned = [len(ASSIGNED.findall(world.log_text(w))) for w in names]
    world.stop_workers("chaos-worker-a")  # leaves the group cleanly; b takes over its partitions
    producer.join()
    outcome.checks["all handled in time"] = world.wait_handled(n, 300)
    outcome.checks["both workers were given partitions"] = all(count > 0 for count in assigned)
    outcome.checks["the remaining worker kept going"] = world.worker_alive("chaos-worker-b")
    world.stop_workers("chaos-worker-b")
    return world.audit(outcome)


def shared_champion(base: Settings, folder: Path) -> dict[str, str]:
    """A small champion in a registry every world shares (the registry scenario brings its own)."""
    registry = {"PRICEMYRIDE_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
                "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT": str(folder / "artifacts")}  # fmt: skip
    os.environ.update(registry)
    train(Settings(), None, limit=4000, params=TrainParams(max_rounds=120), promote=True)
    return registry

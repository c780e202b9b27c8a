"""The hostile corpus (tests/corpus/hostile.py) against a running worker and drift monitor on the real broker,
database and registry, interleaved with good listings: neither process exits, every good listing is scored
once (two sites' same id included), every bad message is dead-lettered once with its reason, and both groups'
lag returns to 0."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError

from infra.harness import borrow_champion, world_env
from pricemyride.bootstrap import prepare
from pricemyride.kafka import kafka_python_options
from pricemyride.settings import Settings
from pricemyride.storage import MAX_STORED_PAYLOAD
from pricemyride.topics import group_offsets, read_topic, uncommitted
from tests.corpus.hostile import PREDICTION_POISON, Hostile, corpus
from tests.integration.helpers import query, scalar, spawn, stop, wait_for

pytestmark = pytest.mark.integration
GOOD = 60
SITE = "hostile-test"


@dataclass
class World:
    settings: Settings
    worker: Any
    monitor: Any
    logs: Path


@pytest.fixture(scope="module")
def world(settings: Settings, champion: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Topics, a database and groups of its own; the session's registry and champion; a worker and a monitor."""
    name = f"hostile{uuid.uuid4().hex[:6]}"
    folder = tmp_path_factory.mktemp(name)
    env = world_env(settings, name, folder, PRICEMYRIDE_MLFLOW_TRACKING_URI=settings.tracking_uri,
                    PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT=str(settings.artifact_root),
                    PRICEMYRIDE_DRIFT_WINDOW_EVENTS="40", PRICEMYRIDE_DRIFT_WINDOW_SECONDS="2")  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        own = Settings()
    prepare(own)
    borrow_champion(own)
    worker = spawn(["-m", "stream_workers", "worker", "-l", "info"], folder / "worker.log", env)
    monitor = spawn(["-m", "monitoring", "worker", "-l", "info"], folder / "monitor.log", env)
    try:
        wait_for(lambda: b"scoring partitions" in (folder / "worker.log").read_bytes(), 90, "the worker to score")
        yield World(own, worker, monitor, folder)
    finally:
        stop(worker)
        stop(monitor)


def good(i: int, source: str = SITE) -> bytes:
    fields = {"id": f"good-{i}", "source": source, "year": 2010 + i % 10, "manufacturer": "ford", "model": "f-150",
              "odometer": 40_000 + 1_000 * i, "price": 15_000 + 100 * i}  # fmt: skip
    return orjson.dumps(fields)


def send(settings: Settings, key: bytes, value: bytes | None, topic: str = "") -> tuple[int, int] | None:
    """One message, acknowledged; its (partition, offset), or None when the broker refuses its size. A producer
    of its own: kafka-python's idempotent producer stops for good after a refused message."""
    producer = KafkaProducer(**kafka_python_options(settings), acks="all", max_request_size=2**21)
    try:
        meta = producer.send(topic or settings.listings_topic, key=key, value=value).get(30)
        return meta.partition, meta.offset
    except MessageSizeTooLargeError:
        return None
    finally:
        producer.close()


def publish(settings: Settings) -> tuple[dict[tuple[int, int], Hostile], list[Hostile]]:
    """Good listings and the corpus interleaved; the corpus by (partition, offset), and what the broker refused."""
    sent, refused = {}, []
    items = corpus()
    for i in range(max(GOOD, len(items))):
        if i < GOOD:
            send(settings, f"good-{i}".encode(), good(i))
        if i < len(items):
            coordinate = send(settings, items[i].key or b"hostile", items[i].value)
            if coordinate is None:
                refused.append(items[i])
            else:
                sent[coordinate] = items[i]
    for source in ("site-a", "site-b"):  # two sites, one listing id
        send(settings, b"good-0", good(0, source))
    for poison in PREDICTION_POISON:
        send(settings, b"poison", poison, settings.predictions_topic)
    return sent, refused


def monitor_caught_up(settings: Settings) -> bool:
    """The monitor's group committed past the last record of every partition of ``price-predictions`` (the
    topic's end offset lies past the transactions' commit markers, so the lag never reads 0 there)."""
    last: dict[int, int] = {}
    for m in read_topic(settings, settings.predictions_topic):
        last[m.partition] = max(last.get(m.partition, -1), m.offset)
    committed = group_offsets(settings, f"{settings.consumer_group}-monitor", settings.predictions_topic)
    return all(committed.get(p, 0) > offset for p, offset in last.items())


def scored_keys(settings: Settings) -> Counter[tuple[str, str]]:
    rows = query(settings, "SELECT source, listing_id FROM predictions")
    return Counter((source, listing_id) for source, listing_id in rows)


def assert_dead_lettered_once_with_reasons(settings: Settings, dead: dict[tuple[int, int], Hostile]) -> None:
    """Each bad message is one dead-letter row (its reason, a bounded payload, the size that arrived) and one
    record on the dead-letter topic naming its coordinate."""
    columns = 'partition, "offset", reason, octet_length(payload), payload_bytes'
    stored = {(p, o): rest for p, o, *rest in query(settings, f"SELECT {columns} FROM dead_letters")}
    assert stored.keys() == dead.keys()
    for coordinate, item in dead.items():
        reason, size, full = stored[coordinate]
        assert reason.startswith(item.reason), (item.name, reason)
        assert len(reason.encode()) <= 1024
        assert (size or 0) <= MAX_STORED_PAYLOAD
        assert full == (None if item.value is None else len(item.value)), item.name
    dlq = read_topic(settings, settings.dlq_topic)
    coordinates = Counter((int(h["dlq.partition"]), int(h["dlq.offset"])) for h in (dict(m.headers) for m in dlq))
    assert coordinates == Counter(dict.fromkeys(dead, 1))


def test_hostile_messages_never_stop_the_worker_or_the_monitor(world: World) -> None:
    settings = world.settings
    sent, refused = publish(settings)
    scored = {k: v for k, v in sent.items() if v.expect == "scored"}
    dead = {k: v for k, v in sent.items() if v.expect == "dead"}
    assert [r.name for r in refused] == [h.name for h in corpus() if h.expect == "refused"]
    expected_rows = GOOD + len(scored) + 2

    def settled() -> bool:
        stored = (
            scalar(settings, "SELECT count(*) FROM predictions"),
            scalar(settings, "SELECT count(*) FROM dead_letters"),
        )
        return stored == (expected_rows, len(dead))

    wait_for(settled, 120, f"{expected_rows} predictions and {len(dead)} dead letters")
    wait_for(lambda: uncommitted(settings) == 0, 60, "the worker to commit every offset")
    wait_for(lambda: monitor_caught_up(settings), 90, "the monitor to commit every prediction")
    assert world.worker.poll() is None, (world.logs / "worker.log").read_text()[-3000:]
    assert world.monitor.poll() is None, (world.logs / "monitor.log").read_text()[-3000:]
    assert b"skipping" in (world.logs / "monitor.log").read_bytes()

    keys = scored_keys(settings)
    assert set(keys.values()) == {1}
    assert {("site-a", "good-0"), ("site-b", "good-0"), (SITE, "good-0")} <= keys.keys()

    assert_dead_lettered_once_with_reasons(settings, dead)
    published = Counter(m.key for m in read_topic(settings, settings.predictions_topic) if m.key != b"poison")
    assert published[b"good-0"] == 3
    assert sum(published.values()) == expected_rows

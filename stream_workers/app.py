"""The scoring worker: a faust app whose main task turns ``listings`` into stored and published predictions.

Run it with ``python -m stream_workers worker -l info``. faust runs the worker (command line, signals,
logging, the model-update task, the registry poll timer). The listings themselves are consumed a whole
fetch at a time: faust's per-event stream machinery topped out at ~14,000 events/s per process on this
machine before any scoring happened, so the scoring loop reads ``getmany`` batches from aiokafka (faust's
own Kafka client) in the same consumer group protocol. Each batch goes: validate → score → one Postgres
transaction → its outputs and offsets to Kafka (``stream_workers.outputs``: one Kafka transaction per input
partition, or publish-then-commit). A crash anywhere before that commit redelivers the batch; the keyed
upserts make that harmless in Postgres, and the transactions on the output topics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import faust
import numpy as np
import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from faust.app.base import BootStrategy
from pydantic import ValidationError

from pricemyride.errors import PriceMyRideError, UncrownedModel
from pricemyride.events import ModelUpdate
from pricemyride.faustapp import faust_app
from pricemyride.kafka import aiokafka_options
from pricemyride.ops import Health, serve_or_exit
from pricemyride.process import exit_now
from pricemyride.retry import retried
from pricemyride.settings import Settings
from pricemyride.storage import delete_old_dead_letters, write_batch
from pricemyride.topics import METADATA_MAX_AGE_MS, SiteTopics
from stream_workers.metrics import WorkerMetrics
from stream_workers.outputs import Outputs, outputs_for
from stream_workers.scoring import RawMessage, ScoredBatch, score_batch
from training.registry import (
    LoadedModel,
    champion_version,
    configure,
    load_champion,
    load_version,
    require_crowned,
)

log = logging.getLogger(__name__)
EXIT_UNSTORED_BATCH = 75  # EX_TEMPFAIL: restart me
HEARTBEAT_S = 0.5  # how soon a worker hears of a rebalance: a worker that joins waits for this, idle
STEPS = ("fetch", "score", "store", "publish", "commit")  # publish: the batch's outputs and offsets to Kafka
# (in the background); commit: waiting for the previous batch's
SHUTDOWN_WAIT_S = 30.0
PRUNE_EVERY_S = 3600.0  # how often a worker deletes the dead letters past their retention


def single_threaded(loaded: LoadedModel) -> LoadedModel:
    """One prediction thread per worker process; workers scale by processes (see PriceModel.use_threads)."""
    use_threads = getattr(loaded.model, "use_threads", None)
    if use_threads is not None:
        use_threads(1)
    return loaded


def freeze_heap(collect: bool) -> None:
    """Move every object alive now (modules, the model, faust's services) out of the cyclic collector's
    sight: they live as long as the process, yet each full collection walked all ~360,000 of them — a
    200 ms stall, the worst of the p99 at 1,000 listings/s. Refcounting still frees them as usual."""
    if collect:
        gc.collect()  # the garbage of start-up is freed, not frozen
    gc.freeze()


def load_streaming_champion(settings: Settings) -> LoadedModel:
    return single_threaded(load_champion(settings))


class Scorer:
    """The worker's state: the champion in use, a successor being loaded, and a Postgres connection.

    A new champion is loaded off the hot path (a thread) and swapped in between batches, so every batch
    is scored by exactly one version. A version that cannot be loaded is refused and the current one kept.
    """

    def __init__(self, settings: Settings, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or WorkerMetrics(enabled=False)
        self.preloading: concurrent.futures.Future[LoadedModel] | None = None
        self.model: LoadedModel | None = None
        self.pending: LoadedModel | None = None
        self.loading: int | None = None
        self.conn: psycopg.AsyncConnection[Any] | None = None

    def preload(self) -> None:
        """Start loading the champion now, in a thread, so it overlaps faust's own start-up."""
        executor = concurrent.futures.ThreadPoolExecutor(1, "preload")
        self.preloading = executor.submit(load_streaming_champion, self.settings)

    async def ready(self) -> LoadedModel:
        if self.model is None:
            if self.preloading is not None:
                self.model = await asyncio.wrap_future(self.preloading)
            else:
                loop = asyncio.get_running_loop()
                self.model = await loop.run_in_executor(None, load_streaming_champion, self.settings)
            log.info("scoring with %s version %d", self.settings.model_name, self.model.version)
            self.metrics.model(self.model.version)
        return self.model

    async def wait_for_champion(self) -> LoadedModel:
        """The champion; with none loadable the worker stays up but not ready (``model_loaded`` 0, which
        the PriceMyRideNoChampionLoaded alert watches) and tries again every ``registry_poll_s``."""
        while True:
            try:
                return await self.ready()
            except PriceMyRideError as exc:
                self.preloading = None
                log.error("cannot start scoring: %s; trying again in %.0f s", exc, self.settings.registry_poll_s)
                await asyncio.sleep(self.settings.registry_poll_s)

    async def model_for_batch(self) -> LoadedModel:
        """The model for the next batch: a loaded successor replaces the current one here, between batches."""
        current = await self.ready()
        if self.pending is not None and self.pending.version != current.version:
            log.warning("hot swap: version %d → %d", current.version, self.pending.version)
            self.model, current = self.pending, self.pending
            self.metrics.model(current.version, swapped=True)
        self.pending = None
        return current

    async def offer(self, version: int, why: str) -> None:
        """Load ``version`` in the background if it is new; keep serving the current model meanwhile."""
        known = {v for v in (self.model and self.model.version, self.pending and self.pending.version, self.loading)}
        if version in known:
            return
        self.loading = version
        log.info("loading %s version %d (%s)", self.settings.model_name, version, why)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, require_crowned, self.settings, version)
            client = await loop.run_in_executor(None, configure, self.settings)
            loaded = await loop.run_in_executor(None, load_version, client, self.settings, version)
            self.pending = single_threaded(loaded)
            freeze_heap(collect=False)  # the new version's objects; no full collection while scoring
            log.info("version %d is loaded; it scores from the next batch on", version)
        except Exception as exc:  # noqa: BLE001 - a bad version must not stop scoring
            current = self.model.version if self.model else None
            self.metrics.load_failed(uncrowned=isinstance(exc, UncrownedModel))
            log.error("cannot load version %d (%s: %s); keeping version %s", version, type(exc).__name__, exc, current)
        finally:
            self.loading = None

    async def store(self, batch: ScoredBatch) -> None:
        """Write the batch; on a database error back off and retry — the batch is never dropped."""

        async def write() -> None:
            if self.conn is None or self.conn.closed:
                self.conn = await psycopg.AsyncConnection.connect(self.settings.database_url.get_secret_value())
            await write_batch(self.conn, batch.rows, batch.dead_letters)

        await retried(write, psycopg.OperationalError, "postgres write", on_failure=self.drop_connection)

    async def drop_connection(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        self.conn = None


async def follow_model_updates(settings: Settings, scorer: Scorer) -> None:
    """Every worker reads every ``model-updates`` event (no consumer group), from the moment it starts."""
    consumer = AIOKafkaConsumer(
        settings.model_updates_topic,
        **aiokafka_options(settings),
        group_id=None,  # no group: every partition, in every worker
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async for message in consumer:
            try:
                update = ModelUpdate.model_validate_json(message.value or b"")
            except ValidationError as exc:
                log.error("ignoring malformed model update at offset %d: %s", message.offset, exc)
                continue
            if update.model and update.model != settings.model_name:
                log.info("ignoring an update of model %s (this worker serves %s)", update.model, settings.model_name)
                continue
            await scorer.offer(update.version, f"model-updates: {update.reason}")
    finally:
        await consumer.stop()


async def prune_every(settings: Settings, every_s: float) -> None:
    """Prune the dead letters when the worker starts, then every ``every_s`` (off the event loop)."""
    while True:
        try:
            await asyncio.get_running_loop().run_in_executor(None, prune_dead_letters, settings)
        except Exception:  # housekeeping never stops a worker; the next hour tries again
            log.exception("dead letters not pruned")
        await asyncio.sleep(every_s)


def prune_dead_letters(settings: Settings) -> None:
    """Delete the dead letters older than the retention setting; a database that does not answer is logged,
    and the next run tries again (every worker runs it; one at a time holds the lock, the others skip)."""
    before = datetime.now(UTC) - timedelta(days=settings.dead_letter_retention_days)
    try:
        with psycopg.connect(settings.database_url.get_secret_value(), connect_timeout=10) as conn:
            deleted = delete_old_dead_letters(conn, before)
    except psycopg.Error as exc:
        log.warning("dead letters not pruned (%s); trying again in an hour", type(exc).__name__)
        return
    if deleted:
        log.info("deleted %d dead letters stored before %s", deleted, before.isoformat(timespec="seconds"))


async def poll_registry(settings: Settings, scorer: Scorer) -> None:
    """The fallback when an update event is missed: compare the champion alias with the model in use."""
    loop = asyncio.get_running_loop()
    try:
        version = await loop.run_in_executor(None, lambda: champion_version(configure(settings), settings))
    except Exception as exc:  # noqa: BLE001 - the registry may be down; scoring goes on
        log.warning("registry poll failed (%s); keeping the current model", exc)
        return
    await scorer.offer(version, "registry poll")


def exit_unstored(exc: BaseException, pending: int) -> NoReturn:
    """Leave at once, committing nothing: the batch in hand is redelivered to whoever owns it next."""
    exit_now(f"stopping with {pending} listings not stored ({exc!r}); they will be redelivered", EXIT_UNSTORED_BATCH)


Fetched = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


def raw_messages(fetched: Fetched) -> list[RawMessage]:
    return [RawMessage(m.topic, m.partition, m.offset, m.key, m.value) for records in fetched.values() for m in records]


def produced_times(fetched: Fetched) -> np.ndarray:
    """Each record's Kafka timestamp (ms since the epoch: when its producer created it)."""
    return np.fromiter((m.timestamp for records in fetched.values() for m in records), dtype=np.float64)


def next_offsets(fetched: Fetched) -> dict[TopicPartition, int]:
    """What to commit once a fetch is stored and published: one past the last offset, per partition."""
    return {tp: records[-1].offset + 1 for tp, records in fetched.items() if records}


def current(fetched: Fetched, held: set[TopicPartition], floors: dict[TopicPartition, int]) -> Fetched:
    """The fetched records this worker may score now: of partitions it still holds, and not below a partition's
    committed offset as read after fencing (a fetch that raced an assignment may have started from an
    offset read before the previous owner's last transaction committed)."""
    kept = {}
    for tp, records in fetched.items():
        if tp not in held or not records:
            continue
        floor = floors.get(tp, 0)
        if records[0].offset < floor:
            records = [m for m in records if m.offset >= floor]
        if records:
            kept[tp] = records
    return kept


class FinishBatchFirst(ConsumerRebalanceListener):  # type: ignore[misc]
    """A rebalance waits until the batch in hand is stored, published and its offsets committed, so a
    partition changes hands at a committed offset and the new owner does not score that batch again.

    A batch's outputs and offsets are finished while the next batch is scored (they only have to land
    before the next batch's); ``settled`` waits for them. An assignment hands the partitions to the
    outputs (``Outputs.hold``), which may fence the previous owner and read the final committed offsets.
    """

    def __init__(self, outputs: Outputs, metrics: WorkerMetrics) -> None:
        self.outputs, self.metrics = outputs, metrics
        self.held = 0  # partitions held now; read by the readiness check from the ops server's thread
        self.in_hand = asyncio.Lock()
        self.committing: asyncio.Future[None] | None = None

    async def settled(self) -> None:
        """Wait for the previous batch's outputs; at-least-once: if the group moved on, that batch is
        redelivered (harmless). Any other failure ends the worker with that batch uncommitted."""
        committing = self.committing
        if committing is None:
            return
        try:
            await asyncio.shield(committing)  # a cancelled wait (shutdown) leaves the transaction to finish
        except CommitFailedError as exc:
            log.warning("offsets of the previous batch not committed (%s); it will be redelivered", exc)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - see exit_unstored
            exit_unstored(exc, 0)
        finally:
            if committing.done():
                self.committing = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.in_hand:
            await self.settled()
            await self.outputs.release()
            log.info("giving up %d partition(s)", len(revoked))
        self.held = 0
        self.metrics.assigned([])

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self.in_hand:
            try:
                await self.outputs.hold(assigned)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - no outputs for these partitions: leave the group
                exit_unstored(exc, 0)
        log.info("scoring partitions %s", sorted(tp.partition for tp in assigned))
        self.held = len(assigned)  # eager rebalancing: the whole new assignment
        self.metrics.assigned(sorted(assigned))


@dataclass
class StepTimes:
    """Where a worker's time goes, logged every ``every_s``: listings/s and ms per batch in each step."""

    metrics: WorkerMetrics = field(default_factory=lambda: WorkerMetrics(enabled=False))
    every_s: float = 10.0
    listings: int = 0
    batches: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))
    since: float = field(default_factory=time.monotonic)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        took = time.perf_counter() - started
        self.seconds[name] += took
        self.metrics.step(name, took)

    def batch_done(self, size: int) -> None:
        self.listings, self.batches = self.listings + size, self.batches + 1
        elapsed = time.monotonic() - self.since
        if elapsed >= self.every_s:
            per_batch = ", ".join(f"{k} {1000 * v / self.batches:.0f}" for k, v in self.seconds.items())
            log.info("%.0f listings/s in %d batches of %.0f; ms per batch: %s",
                     self.listings / elapsed, self.batches, self.listings / self.batches, per_batch)  # fmt: skip
            self.listings, self.batches, self.since = 0, 0, time.monotonic()
            self.seconds = dict.fromkeys(STEPS, 0.0)


def listings_consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **aiokafka_options(settings),
        group_id=settings.consumer_group,
        enable_auto_commit=False,  # offsets are committed after the batch is stored and published
        auto_offset_reset="earliest",
        max_poll_records=settings.batch_size,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,  # a new site's topic is scored within a minute
        fetch_max_wait_ms=100,
        session_timeout_ms=int(settings.worker_session_timeout_s * 1000),
        heartbeat_interval_ms=int(HEARTBEAT_S * 1000),
    )


class ScoringLoop:
    """The worker's main loop: fetch a batch → score → store → publish → commit, one batch at a time.

    A failure between fetch and commit ends the process without committing (``exit_unstored``), so the
    batch is redelivered; a rebalance waits for the batch in hand (``FinishBatchFirst``)."""

    def __init__(self, settings: Settings, scorer: Scorer, health: Health | None = None) -> None:
        self.settings, self.scorer, self.metrics = settings, scorer, scorer.metrics
        self.sites = SiteTopics.of(settings)  # the operator's listings topic and every site's, by pattern
        self.consumer = listings_consumer(settings)
        self.outputs = outputs_for(settings, self.consumer)
        self.rebalance = FinishBatchFirst(self.outputs, self.metrics)
        self.times, self.lag_at, self.stored_at = StepTimes(self.metrics), 0.0, 0.0
        if health is not None:
            health.checks["partitions assigned"] = lambda: self.rebalance.held > 0

    async def run(self) -> None:
        await self.scorer.wait_for_champion()  # joins the group only with a model to score with
        self.consumer.subscribe(pattern=self.sites.listings_pattern(), listener=self.rebalance)
        await self.outputs.start()
        await self.consumer.start()
        freeze_heap(collect=True)
        try:
            while True:
                await self.next_batch()
        finally:
            with contextlib.suppress(Exception):  # the last stored batch's outputs and offsets, within reason
                await asyncio.wait_for(self.rebalance.settled(), SHUTDOWN_WAIT_S)
            await self.consumer.stop()
            await self.outputs.stop()

    async def next_batch(self) -> None:
        with self.times.step("fetch"):
            fetched = await self.consumer.getmany(timeout_ms=1000, max_records=self.settings.batch_size)
        await self.update_lag()
        async with self.rebalance.in_hand:
            fetched = current(fetched, self.consumer.assignment(), self.outputs.floors)
            if not fetched:
                return
            messages = raw_messages(fetched)
            try:
                batch, produced_ms = await self.handle(messages), produced_times(fetched)
                self.metrics.batch(len(messages), len(batch.rows), batch.dead_letters, produced_ms, self.stored_at)
                with self.times.step("commit"):
                    await self.rebalance.settled()
                self.rebalance.committing = asyncio.ensure_future(self.finish(batch, next_offsets(fetched)))
                self.times.batch_done(len(messages))
            except asyncio.CancelledError:
                raise  # shutting down: this batch is not committed, so it is redelivered
            except BaseException as exc:  # noqa: BLE001 - see exit_unstored
                exit_unstored(exc, len(messages))

    async def finish(self, batch: ScoredBatch, offsets: dict[TopicPartition, int]) -> None:
        """Publish the batch's outputs and commit its offsets (in one transaction per partition when
        exactly once); runs while the next batch is scored."""
        with self.times.step("publish"):
            await self.outputs.finish(batch, offsets)

    async def update_lag(self) -> None:
        """Consumer lag per partition, at most once a second: the high watermark Kafka sent with the last
        fetch minus this worker's position (both known locally, no request to the broker)."""
        now = time.monotonic()
        if not self.metrics.enabled or now - self.lag_at < 1.0:
            return
        self.lag_at = now
        assigned = self.consumer.assignment()
        positions = {tp: await self.consumer.position(tp) for tp in assigned}
        self.metrics.lag(positions, {tp: self.consumer.highwater(tp) for tp in assigned})

    async def handle(self, messages: Sequence[RawMessage]) -> ScoredBatch:
        """Score and store the batch (its outputs go to Kafka afterwards, in ``finish``)."""
        model = await self.scorer.model_for_batch()
        with self.times.step("score"):
            batch = score_batch(model.model, model.version, messages, self.sites)
        with self.times.step("store"):
            await self.scorer.store(batch)
        self.stored_at = time.time()
        for row in batch.dead_letters:
            log.info("dead-lettered %s[%d]@%d: %s", row.topic, row.partition, row.offset, row.reason[:200])
        return batch


def create_app(settings: Settings, preload: bool = False) -> faust.App:
    """Build the faust app and wire its tasks; nothing connects until the worker starts (with ``preload``,
    the champion starts loading at once)."""
    app = faust_app(settings, "worker")
    # faust's own consumer and producer stay off: the scoring loop has its own (an idle faust consumer
    # thread polling for nothing took CPU from scoring, measured as 2x the time per small batch).
    app.boot_strategy = BootStrategy(app, enable_kafka_consumer=False, enable_kafka_producer=False)
    scorer, health = Scorer(settings, WorkerMetrics(settings.metrics_enabled)), Health()
    health.checks["champion loaded"] = lambda: scorer.model is not None
    health.checks["partitions assigned"] = lambda: False  # until the scoring loop's consumer exists
    if preload:
        scorer.preload()

    @app.task
    async def score_listings() -> None:
        serve_or_exit(settings, "worker", health)
        await ScoringLoop(settings, scorer, health).run()

    @app.task
    async def model_updates() -> None:
        await follow_model_updates(settings, scorer)

    @app.timer(interval=settings.registry_poll_s)
    async def registry_poll() -> None:
        await poll_registry(settings, scorer)

    @app.task
    async def dead_letter_retention() -> None:
        await prune_every(settings, PRUNE_EVERY_S)

    return app

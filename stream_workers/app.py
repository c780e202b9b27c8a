"""The scoring worker: a faust app whose main task turns ``listings`` into stored and published predictions.

Run it with ``python -m stream_workers worker -l info``. faust runs the worker (command line, signals,
logging, the model-update task, the registry poll timer). The listings themselves are consumed a whole
fetch at a time: faust's per-event stream machinery topped out at ~14,000 events/s per process on this
machine before any scoring happened, so the scoring loop reads ``getmany`` batches from aiokafka (faust's
own Kafka client) in the same consumer group protocol. Each batch goes: validate → score → one Postgres
transaction → its outputs and offsets to Kafka (``stream_workers.delivery`` owns the batch in flight,
``stream_workers.outputs`` writes it: one Kafka transaction per input partition, or publish-then-commit).
A crash anywhere before that commit redelivers the batch; the keyed upserts make that harmless in Postgres,
and the transactions on the output topics. The champion lives in ``training.champion``.
"""

from __future__ import annotations

import logging
import time

import faust
from aiokafka import AIOKafkaConsumer
from faust.app.base import BootStrategy

from pricemyride.faustapp import faust_app
from pricemyride.kafka import aiokafka_options
from pricemyride.ops import Health, serve_or_exit
from pricemyride.settings import Settings
from pricemyride.topics import METADATA_MAX_AGE_MS, SiteTopics
from stream_workers.delivery import Delivery, Fetched, FinishBatchFirst, produced_times, raw_messages
from stream_workers.metrics import WorkerMetrics
from stream_workers.outputs import outputs_for
from stream_workers.scoring import ScoredBatch, score_batch
from stream_workers.steps import StepTimes
from stream_workers.store import Store, prune_every
from training.champion import Champion, Shadow, follow_model_updates, freeze_heap, poll_registry

log = logging.getLogger(__name__)
HEARTBEAT_S = 0.5  # how soon a worker hears of a rebalance: a worker that joins waits for this, idle


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
    """The worker's main loop: fetch a batch → score → store, then hand it to ``Delivery`` (which publishes it,
    commits its offsets, and decides when the worker must leave), one batch at a time."""

    def __init__(self, settings: Settings, champion: Champion, metrics: WorkerMetrics, health: Health | None = None,
                 shadow: Shadow | None = None) -> None:  # fmt: skip
        self.settings, self.champion, self.metrics = settings, champion, metrics
        self.shadow = shadow or Shadow(settings, metrics)
        self.sites = SiteTopics.of(settings)  # the operator's listings topic and every site's, by pattern
        self.consumer = listings_consumer(settings)
        self.outputs = outputs_for(settings, self.consumer)
        self.times, self.lag_at, self.stored_at = StepTimes(self.metrics), 0.0, 0.0
        self.store = Store(settings, self.times)
        self.delivery = Delivery(self.outputs, self.consumer, self.metrics, self.times)
        if health is not None:
            health.checks["partitions assigned"] = lambda: self.delivery.held > 0

    async def run(self) -> None:
        await self.champion.wait()  # joins the group only with a model to score with
        await self.shadow.refresh("start")
        self.consumer.subscribe(pattern=self.sites.listings_pattern(), listener=FinishBatchFirst(self.delivery))
        await self.outputs.start()
        await self.consumer.start()
        freeze_heap(collect=True)
        try:
            while True:
                await self.next_batch()
        finally:
            await self.delivery.close()
            await self.consumer.stop()
            await self.outputs.stop()

    async def next_batch(self) -> None:
        with self.times.step("fetch"):
            fetched = await self.consumer.getmany(timeout_ms=1000, max_records=self.settings.batch_size)
        await self.update_lag()
        if size := await self.delivery.deliver(fetched, self.handle):
            self.times.batch_done(size)

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

    async def handle(self, fetched: Fetched) -> ScoredBatch:
        """Score and store the batch (``Delivery`` sends its outputs to Kafka afterwards)."""
        model, messages = await self.champion.for_batch(), raw_messages(fetched)
        with self.times.step("score"):
            batch = score_batch(model.model, model.version, messages, self.sites)
        shadow = self.shadow.pending(model.version, batch.rows, batch.listings)  # priced meanwhile, or None
        try:
            with self.times.step("store"):
                await self.store.store(batch, shadow)
        finally:
            if shadow is not None:
                shadow.cancel()  # done by now, unless the store was cancelled (the worker stopping)
        self.stored_at = time.time()
        self.metrics.batch(len(messages), len(batch.rows), batch.dead_letters, produced_times(fetched), self.stored_at)
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
    metrics, health = WorkerMetrics(settings.metrics_enabled), Health()
    champion, shadow = Champion(settings, metrics), Shadow(settings, metrics)
    health.checks["champion loaded"] = lambda: champion.model is not None
    health.checks["partitions assigned"] = lambda: False  # until the scoring loop's consumer exists
    if preload:
        champion.preload()

    @app.task
    async def score_listings() -> None:
        serve_or_exit(settings, "worker", health)
        await ScoringLoop(settings, champion, metrics, health, shadow).run()

    @app.task
    async def model_updates() -> None:
        await follow_model_updates(settings, champion, shadow)

    @app.timer(interval=settings.registry_poll_s)
    async def registry_poll() -> None:
        await poll_registry(settings, champion, shadow)

    @app.task
    async def dead_letter_retention() -> None:
        await prune_every(settings)

    return app

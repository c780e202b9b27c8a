"""The faust application: ``score_listings`` turns ``listings`` into stored and published predictions.

Run it with ``python -m stream_workers worker -l info``. The agent only wires: it takes a micro-batch,
calls the pure steps in ``scoring``, writes one transaction to Postgres, then publishes. Concurrency is
1 per process (faust-streaming issue 606); scale with partitions and worker processes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any, NoReturn, cast

import faust
import psycopg
from aiokafka import AIOKafkaConsumer
from faust.types import EventT
from pydantic import ValidationError

from pricemyride.errors import PriceMyRideError
from pricemyride.events import ModelUpdate
from pricemyride.kafka import aiokafka_options, faust_credentials
from pricemyride.settings import Settings
from pricemyride.storage import write_batch
from stream_workers.scoring import RawMessage, ScoredBatch, dlq_headers, score_batch
from training.registry import LoadedModel, champion_version, configure, load_champion, load_version

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 10.0
EXIT_UNSTORED_BATCH = 75  # EX_TEMPFAIL: restart me
EXIT_NO_MODEL = 78  # EX_CONFIG: train or fix the champion first


class Scorer:
    """The worker's state: the champion in use, a successor being loaded, and a Postgres connection.

    A new champion is loaded off the hot path (a thread) and swapped in between batches, so every batch
    is scored by exactly one version. A version that cannot be loaded is refused and the current one kept.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model: LoadedModel | None = None
        self.pending: LoadedModel | None = None
        self.loading: int | None = None
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def ready(self) -> LoadedModel:
        if self.model is None:
            loop = asyncio.get_running_loop()
            self.model = await loop.run_in_executor(None, load_champion, self.settings)
            log.info("scoring with %s version %d", self.settings.model_name, self.model.version)
        return self.model

    async def model_for_batch(self) -> LoadedModel:
        """The model for the next batch: a loaded successor replaces the current one here, between batches."""
        current = await self.ready()
        if self.pending is not None and self.pending.version != current.version:
            log.warning("hot swap: version %d → %d", current.version, self.pending.version)
            self.model, current = self.pending, self.pending
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
            client = await loop.run_in_executor(None, configure, self.settings)
            self.pending = await loop.run_in_executor(None, load_version, client, self.settings, version)
            log.info("version %d is loaded; it scores from the next batch on", version)
        except Exception as exc:  # noqa: BLE001 - a bad version must not stop scoring
            current = self.model.version if self.model else None
            log.error("cannot load version %d (%s: %s); keeping version %s", version, type(exc).__name__, exc, current)
        finally:
            self.loading = None

    async def store(self, batch: ScoredBatch) -> None:
        """Write the batch; on a database error back off and retry — the batch is never dropped."""
        backoff = 0.5
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = await psycopg.AsyncConnection.connect(self.settings.database_url.get_secret_value())
                await write_batch(self.conn, batch.prediction_rows(), batch.dead_letters)
                return
            except psycopg.OperationalError as exc:
                log.warning("postgres write failed (%s); retrying in %.1f s", exc, backoff)
                if self.conn is not None:
                    await self.conn.close()
                self.conn = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)


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
            await scorer.offer(update.version, f"model-updates: {update.reason}")
    finally:
        await consumer.stop()


async def poll_registry(settings: Settings, scorer: Scorer) -> None:
    """The fallback when an update event is missed: compare the champion alias with the model in use."""
    loop = asyncio.get_running_loop()
    try:
        version = await loop.run_in_executor(None, lambda: champion_version(configure(settings), settings))
    except Exception as exc:  # noqa: BLE001 - the registry may be down; scoring goes on
        log.warning("registry poll failed (%s); keeping the current model", exc)
        return
    await scorer.offer(version, "registry poll")


def without_web(argv: list[str]) -> list[str]:
    """faust's worker command starts a web server on 6066 unless told not to; ours serve no web pages."""
    if len(argv) > 1 and argv[1] == "worker" and not any(a in {"--with-web", "--without-web"} for a in argv):
        return [*argv, "--without-web"]
    return argv


def exit_without_ack(exc: BaseException, pending: int) -> NoReturn:
    """Leave the process without acknowledging the batch in hand.

    faust's ``take_events`` acks a batch in a ``finally`` block, even when processing raised or was
    cancelled, and an acked offset is committed: the batch would be lost. Exiting at once keeps its
    offsets uncommitted, so it is redelivered to the next worker (and the upsert makes that harmless).
    """
    log.critical("stopping with %d listings not stored (%r); they will be redelivered", pending, exc)
    logging.shutdown()
    os._exit(EXIT_UNSTORED_BATCH)


def raw_message(event: EventT) -> RawMessage:
    message = event.message
    return RawMessage(message.topic, message.partition, message.offset, message.key, message.value)


def create_app(settings: Settings) -> faust.App:
    """Build the faust app and its agent from settings; nothing connects until the worker starts."""
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        broker_credentials=faust_credentials(settings),
        value_serializer="raw",
        key_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        stream_wait_empty=False,  # on shutdown, leave a half-filled batch unacked: it is redelivered
        broker_commit_every=settings.batch_size,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_s / 3),
        broker_commit_interval=1.0,
    )
    listings = app.topic(settings.listings_topic, value_serializer="raw", key_serializer="raw")
    scorer = Scorer(settings)

    async def publish(batch: ScoredBatch) -> None:
        """Hand every prediction and dead letter to the producer, then wait until Kafka has them all.
        (faust's own producer, called directly: Topic.send's per-message bookkeeping is not needed here.)"""
        producer = app.producer
        pending = [
            await producer.send(settings.predictions_topic, p.listing_id.encode(), p.model_dump_json().encode(),
                                None, None, None)
            for p in batch.predictions
        ]  # fmt: skip
        pending += [
            await producer.send(settings.dlq_topic, d.key, d.payload, None, None, dlq_headers(d))
            for d in batch.dead_letters
        ]
        await asyncio.gather(*pending)

    @app.agent(listings, name="score_listings", concurrency=1)
    async def score_listings(stream: faust.StreamT[bytes]) -> None:
        try:
            await scorer.ready()
        except PriceMyRideError as exc:  # no usable champion: nothing can be scored, so stop loudly
            log.critical("cannot start scoring: %s", exc)
            logging.shutdown()
            os._exit(EXIT_NO_MODEL)
        async for events in cast(faust.Stream[bytes], stream).take_events(
            settings.batch_size, within=settings.batch_within_s
        ):
            try:
                await handle(await scorer.model_for_batch(), [raw_message(e) for e in events])
            except BaseException as exc:  # noqa: BLE001 - see exit_without_ack
                exit_without_ack(exc, len(events))

    @app.task
    async def model_updates() -> None:
        await follow_model_updates(settings, scorer)

    @app.timer(interval=settings.registry_poll_s)
    async def registry_poll() -> None:
        await poll_registry(settings, scorer)

    async def handle(model: LoadedModel, messages: Sequence[RawMessage]) -> None:
        batch = score_batch(model.model, model.version, messages)
        await scorer.store(batch)
        await publish(batch)
        for row in batch.dead_letters:
            log.info("dead-lettered %s[%d]@%d: %s", row.topic, row.partition, row.offset, row.reason[:200])

    return app

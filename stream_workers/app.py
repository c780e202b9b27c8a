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
from faust.types import EventT

from pricemyride.settings import Settings
from pricemyride.storage import write_batch
from stream_workers.scoring import RawMessage, ScoredBatch, dlq_headers, score_batch
from training.registry import LoadedModel, load_champion

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 10.0
EXIT_UNSTORED_BATCH = 75  # EX_TEMPFAIL: restart me


class Scorer:
    """The worker's state: the champion model and a Postgres connection, both opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model: LoadedModel | None = None
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def ready(self) -> LoadedModel:
        if self.model is None:
            loop = asyncio.get_running_loop()
            self.model = await loop.run_in_executor(None, load_champion, self.settings)
            log.info("scoring with %s version %d", self.settings.model_name, self.model.version)
        return self.model

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
        value_serializer="raw",
        key_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        broker_commit_every=settings.batch_size,
        broker_commit_interval=1.0,
    )
    listings = app.topic(settings.listings_topic, value_serializer="raw", key_serializer="raw")
    predictions = app.topic(settings.predictions_topic, value_serializer="raw", key_serializer="raw")
    dlq = app.topic(settings.dlq_topic, value_serializer="raw", key_serializer="raw")
    scorer = Scorer(settings)

    async def publish(batch: ScoredBatch) -> None:
        pending = [
            await predictions.send(key=p.listing_id.encode(), value=p.model_dump_json().encode())
            for p in batch.predictions
        ]
        pending += [await dlq.send(key=d.key, value=d.payload, headers=dlq_headers(d)) for d in batch.dead_letters]
        await asyncio.gather(*pending)

    @app.agent(listings, name="score_listings", concurrency=1)
    async def score_listings(stream: faust.StreamT[bytes]) -> None:
        model = await scorer.ready()
        async for events in cast(faust.Stream[bytes], stream).take_events(
            settings.batch_size, within=settings.batch_within_s
        ):
            try:
                await handle(model, [raw_message(e) for e in events])
            except BaseException as exc:  # noqa: BLE001 - see exit_without_ack
                exit_without_ack(exc, len(events))

    async def handle(model: LoadedModel, messages: Sequence[RawMessage]) -> None:
        batch = score_batch(model.model, model.version, messages)
        await scorer.store(batch)
        await publish(batch)
        for row in batch.dead_letters:
            log.info("dead-lettered %s[%d]@%d: %s", row.topic, row.partition, row.offset, row.reason[:200])

    return app

"""The batch in flight, from the records fetched to their committed offsets, owned by one object.

``Delivery`` is the only place that knows which batch is in hand, which batch's outputs are still on their
way to Kafka, which partitions this worker holds and from which offset it may score them, and when the
worker must leave. The scoring loop hands it each fetch (``deliver``); the rebalance listener hands it each
assignment (``hold``) and revocation (``revoke``) and does nothing else.

A batch goes: admit (of partitions still held, not below a floor) → score and store (the loop's ``handle``) →
submit its outputs and offsets, which finish in the background while the next batch is scored → settled
before the next batch is submitted, and before any partition is given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

import numpy as np
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from pricemyride.process import exit_now
from stream_workers.metrics import WorkerMetrics
from stream_workers.outputs import Outputs
from stream_workers.scoring import RawMessage, ScoredBatch
from stream_workers.steps import StepTimes

log = logging.getLogger(__name__)
EXIT_UNSTORED_BATCH = 75  # EX_TEMPFAIL: restart me
SHUTDOWN_WAIT_S = 30.0  # how long a stopping worker waits for the last batch's outputs and offsets

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


@contextlib.contextmanager
def stored_or_exit(pending: int) -> Iterator[None]:
    """The one decision to leave: any failure in the block ends the process at once, committing nothing, so
    the batch in hand is redelivered to whoever owns its partitions next. A cancellation (shutdown) passes."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 - whatever it was, this batch's fate is now redelivery
        why = f"stopping with {pending} listings not stored ({exc!r}); they will be redelivered"
        exit_now(why, EXIT_UNSTORED_BATCH)


class Delivery:
    """Owns the batch in flight: admit → score and store → submit → settle, and the partitions it came from."""

    def __init__(self, outputs: Outputs, consumer: AIOKafkaConsumer, metrics: WorkerMetrics,
                 times: StepTimes) -> None:  # fmt: skip
        self.outputs, self.consumer, self.metrics, self.times = outputs, consumer, metrics, times
        self.held = 0  # partitions held now; read by the readiness check from the ops server's thread
        self.in_hand = asyncio.Lock()  # a batch between admit and submit, or a rebalance step
        self.committing: asyncio.Future[None] | None = None  # the last batch's outputs and offsets

    async def deliver(self, fetched: Fetched, handle: Callable[[Fetched], Awaitable[ScoredBatch]]) -> int:
        """Admit the fetch, let ``handle`` score and store it, submit its outputs; how many records it had."""
        async with self.in_hand:
            admitted = current(fetched, self.consumer.assignment(), self.outputs.floors)
            size = sum(len(records) for records in admitted.values())
            if size:
                with stored_or_exit(size):
                    await self.submit(await handle(admitted), next_offsets(admitted))
        return size

    async def submit(self, batch: ScoredBatch, offsets: dict[TopicPartition, int]) -> None:
        """Once the previous batch is settled, send this one's outputs and offsets, in the background."""
        with self.times.step("commit"):
            await self.settle()
        self.committing = asyncio.ensure_future(self.publish(batch, offsets))

    async def publish(self, batch: ScoredBatch, offsets: dict[TopicPartition, int]) -> None:
        with self.times.step("publish"):
            await self.outputs.finish(batch, offsets)

    async def settle(self) -> None:
        """Wait for the last batch's outputs; at-least-once: if the group moved on, that batch is redelivered
        (harmless). Any other failure ends the worker with that batch uncommitted."""
        committing = self.committing
        if committing is None:
            return
        try:
            with stored_or_exit(0):
                try:
                    await asyncio.shield(committing)  # a cancelled wait (shutdown) leaves the transaction to finish
                except CommitFailedError as exc:
                    log.warning("offsets of the previous batch not committed (%s); it will be redelivered", exc)
        finally:
            if committing.done():
                self.committing = None

    async def hold(self, assigned: set[TopicPartition]) -> None:
        """Take the assigned partitions: their outputs (``Outputs.hold``, which may fence the previous owner)."""
        async with self.in_hand:
            with stored_or_exit(0):  # no outputs for these partitions: leave the group
                await self.outputs.hold(assigned)
        log.info("scoring partitions %s", sorted(tp.partition for tp in assigned))
        self.held = len(assigned)  # eager rebalancing: the whole new assignment
        self.metrics.assigned(sorted(assigned))

    async def revoke(self, revoked: set[TopicPartition]) -> None:
        """Give the partitions up at a committed offset: the batch in flight settles first."""
        async with self.in_hand:
            await self.settle()
            await self.outputs.release()
            log.info("giving up %d partition(s)", len(revoked))
        self.held = 0
        self.metrics.assigned([])

    async def close(self) -> None:
        """On the way out: the last stored batch's outputs and offsets, within reason."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.settle(), SHUTDOWN_WAIT_S)


class FinishBatchFirst(ConsumerRebalanceListener):  # type: ignore[misc]
    """A rebalance waits until the batch in hand is stored, published and its offsets committed, so a
    partition changes hands at a committed offset and the new owner does not score that batch again."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.delivery.revoke(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.delivery.hold(assigned)

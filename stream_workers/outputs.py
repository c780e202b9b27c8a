"""How a scored batch leaves the worker: its predictions and dead letters on Kafka, then its offsets.

Two guarantees, chosen by ``PRICEMYRIDE_PROCESSING_GUARANTEE``:

- ``exactly_once`` (the default): each input partition's share of the batch — predictions, dead letters
  and the partition's next offset — is one Kafka transaction. Readers with ``isolation_level=read_committed``
  see every output once: a batch whose transaction did not commit is invisible, and is scored again from
  the last committed offset.
- ``at_least_once``: publish, wait for the acks, then commit the offsets; after a crash a batch that was
  published but not committed appears twice on the topics (Postgres, keyed, stays exact either way).

Fencing zombies: aiokafka's ``send_offsets_to_transaction`` takes a group id only (no group generation, so
not KIP-447's fencing). So, as Kafka Streams did before KIP-447, each input partition has a transactional
producer of its own, ``<consumer group>-<topic>-<partition>``. The worker that is given a partition starts
that producer before it reads the partition's committed offset: starting it fences the previous owner (its
next transaction fails with ``ProducerFenced``) and ends that owner's open transaction — aborted, or
completed if it had already asked to commit — so the committed offset read next is final, and the worker
scores nothing below it.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from pricemyride.kafka import aiokafka_options
from pricemyride.retry import Backoff, retried
from pricemyride.settings import Settings
from pricemyride.storage import DeadLetterRow
from pricemyride.topics import SiteTopics
from stream_workers.publishing import MAX_BATCH_BYTES, BatchPublisher, OutRecord
from stream_workers.scoring import ScoredBatch, dlq_headers

log = logging.getLogger(__name__)
MAX_DLQ_VALUE = MAX_BATCH_BYTES // 2
MAX_DLQ_KEY = 1024  # a listing's key is its id (≤ 64 characters); a 900 KB key must not overflow the record
# Kafka aborts a transaction open longer than this (a worker retrying through a long outage is then fenced
# and exits 75); it is also how long read_committed readers wait behind a dead worker's open transaction
# if no other worker takes its partitions over.
TRANSACTION_TIMEOUT_MS = 120_000


class OutputsLost(RuntimeError):
    """This worker may no longer write a partition's outputs (fenced, or its producer broke for good)."""


class Step(enum.Enum):
    """Where ``ExactlyOnce.commit`` stands with one partition's transaction."""

    TRANSACT = "transact"  # begin, send the outputs and the offset, commit
    CHECK = "check"  # after a failure: did the commit land after all?
    RENEW = "renew"  # the producer cannot go on: a new one with the same transactional id
    DONE = "done"


class TransactionFailed(KafkaError):  # type: ignore[misc]
    """A transaction failed, not fenced; ``then`` is the step that recovers from it (CHECK or RENEW)."""

    def __init__(self, message: str, then: Step) -> None:
        super().__init__(message)
        self.then = then


@dataclass(frozen=True)
class PartitionOutputs:
    """One input partition's share of a batch: the records that answer its listings."""

    predictions: list[OutRecord] = field(default_factory=list)
    dead_letters: list[OutRecord] = field(default_factory=list)


def output_records(batch: ScoredBatch) -> tuple[list[OutRecord], list[OutRecord]]:
    """(predictions, dead letters) as records, each going to the partition its listing came from."""
    predictions = [OutRecord(p.partition, p.key, p.value) for p in batch.published]
    return predictions, [dead_letter_record(d) for d in batch.dead_letters]


def dead_letter_record(row: DeadLetterRow) -> OutRecord:
    """The rejected bytes with the why in headers; a huge payload is cut to ``MAX_DLQ_VALUE`` and a huge key to
    ``MAX_DLQ_KEY`` on Kafka (headers ``dlq.truncated_from`` and ``dlq.key_truncated_from``), so that the record
    always fits a record batch and the broker's limit."""
    headers, value, key = dlq_headers(row), row.payload or b"", row.key
    if len(value) > MAX_DLQ_VALUE:
        headers.append(("dlq.truncated_from", str(len(value)).encode()))
        value = value[:MAX_DLQ_VALUE]
    if key is not None and len(key) > MAX_DLQ_KEY:
        headers.append(("dlq.key_truncated_from", str(len(key)).encode()))
        key = key[:MAX_DLQ_KEY]
    return OutRecord(row.partition, key, value, headers)


def by_partition(batch: ScoredBatch) -> dict[TopicPartition, PartitionOutputs]:
    """The batch's records grouped by the input partition (of whichever listings topic) they answer."""
    grouped: dict[TopicPartition, PartitionOutputs] = defaultdict(PartitionOutputs)
    predictions, dead = output_records(batch)
    for published, record in zip(batch.published, predictions, strict=True):
        grouped[TopicPartition(published.topic, record.source_partition)].predictions.append(record)
    for row, record in zip(batch.dead_letters, dead, strict=True):
        grouped[TopicPartition(row.topic, record.source_partition)].dead_letters.append(record)
    return grouped


def transactional_id(settings: Settings, tp: TopicPartition) -> str:
    return f"{settings.consumer_group}-{tp.topic}-{tp.partition}"


class AtLeastOnce:
    """Publish the batch and wait for Kafka, then commit the consumer's offsets."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer) -> None:
        self.settings, self.consumer = settings, consumer
        self.producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all", enable_idempotence=True,
                                         max_batch_size=MAX_BATCH_BYTES)  # fmt: skip
        self.publisher = BatchPublisher(self.producer)

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def hold(self, assigned: set[TopicPartition]) -> None:
        """Nothing to do on an assignment: the consumer reads the committed offsets itself."""

    async def release(self) -> None:
        """Nothing to do on a revocation."""

    @property
    def floors(self) -> dict[TopicPartition, int]:
        return {}

    async def finish(self, batch: ScoredBatch, offsets: dict[TopicPartition, int]) -> None:
        grouped, sites = by_partition(batch), SiteTopics.of(self.settings)

        async def send() -> None:
            pending = []
            for tp, outputs in grouped.items():
                pending += await self.publisher.send(sites.predictions_for(tp.topic), outputs.predictions)
                pending += await self.publisher.send(self.settings.dlq_topic, outputs.dead_letters)
            await asyncio.gather(*pending)

        await retried(send, KafkaError, "publishing")
        await self.consumer.commit(offsets)


class ExactlyOnce:
    """One transactional producer per input partition held; each batch commits one transaction per partition."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer) -> None:
        self.settings, self.consumer = settings, consumer
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}
        self.partition_counts: dict[str, int] = {}
        self.floors: dict[TopicPartition, int] = {}  # each new partition's committed offset, read after fencing

    async def start(self) -> None:
        """Producers start with the partitions they write for (``hold``)."""

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.producers.values()), return_exceptions=True)
        self.producers.clear()

    async def release(self) -> None:
        """On a revocation (eager: every partition), stop every producer: whatever this worker is given next
        starts — and fences — afresh, so a producer fenced while it held nothing is never used again."""
        await self.stop()
        self.floors.clear()

    async def hold(self, assigned: set[TopicPartition]) -> None:
        """Start (and so fence with) the producers of the assigned partitions; then read
        the new partitions' committed offsets, final now that their previous owner is fenced, as floors: the
        consumer may have read an older one before the fence, and records below a floor are not scored
        again (``current`` in the scoring loop). No seek: aiokafka's own committed-offset refresh, still
        running from the assignment, could move the position back after one."""
        new = sorted(assigned - self.producers.keys())  # all of them: ``release`` ran on the revocation before
        started = await asyncio.gather(*(self.started_producer(tp) for tp in new))
        self.producers.update(zip(new, started, strict=True))
        committed = await asyncio.gather(*(self.consumer.committed(tp) for tp in new))
        self.floors.update({tp: offset for tp, offset in zip(new, committed, strict=True) if offset is not None})

    async def started_producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        """``fenced_producer``, waiting out a broker that does not answer yet."""
        what = f"starting {transactional_id(self.settings, tp)}"
        return await retried(functools.partial(self.fenced_producer, tp), KafkaError, what)

    async def fenced_producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**aiokafka_options(self.settings), transactional_id=transactional_id(
            self.settings, tp), enable_idempotence=True, acks="all", max_batch_size=MAX_BATCH_BYTES,
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS)  # fmt: skip
        try:
            await producer.start()
            # An empty transaction waits for the producer id: by then the previous owner is fenced and its open
            # transaction ended (the coordinator answers CONCURRENT_TRANSACTIONS until it has; aiokafka retries).
            await producer.begin_transaction()
            await producer.abort_transaction()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def finish(self, batch: ScoredBatch, offsets: dict[TopicPartition, int]) -> None:
        grouped = by_partition(batch)
        await asyncio.gather(*(self.commit(tp, grouped.get(tp, PartitionOutputs()), offset)
                               for tp, offset in offsets.items()))  # fmt: skip

    async def commit(self, tp: TopicPartition, outputs: PartitionOutputs, offset: int) -> None:
        """One transaction: the partition's outputs and its next offset, retried until Kafka takes it, as a
        small state machine (``Step``): TRANSACT → DONE; a failed attempt is aborted → CHECK, or, when the
        producer cannot abort (aiokafka's turns fatal when a broker vanishes mid-request) → RENEW: a new
        producer with the same id → CHECK; CHECK reads the committed offset: the failed attempt's commit went
        through after all (its answer was lost) → DONE, else → TRANSACT. Broker trouble in any step waits
        out a back-off and tries that step again. A fence ends it with ``OutputsLost`` (another worker owns
        the partition now, or the transaction outlived ``TRANSACTION_TIMEOUT_MS`` and Kafka aborted it)."""
        step, backoff = Step.TRANSACT, None  # the back-off is made on the first failure, off the common path
        while step is not Step.DONE:
            try:
                step = await self.advance(step, tp, outputs, offset)
            except KafkaError as exc:
                if fenced(exc):
                    raise self.fenced_out(tp) from exc
                backoff = backoff or Backoff(f"transaction for {tp.topic}[{tp.partition}]")
                await backoff.wait(exc)
                step = exc.then if isinstance(exc, TransactionFailed) else step

    async def advance(self, step: Step, tp: TopicPartition, outputs: PartitionOutputs, offset: int) -> Step:
        """One step of ``commit``: the next step, or a ``KafkaError`` to wait out before trying it again."""
        if step is Step.RENEW:
            await self.renew(tp)
            return Step.CHECK
        if step is Step.CHECK:
            return Step.DONE if (await self.consumer.committed(tp) or 0) >= offset else Step.TRANSACT
        producer = self.producers.get(tp)
        if producer is None:
            raise OutputsLost(f"{tp.topic}[{tp.partition}]: expected a producer for a held partition, found none")
        try:
            await self.transact(producer, tp, outputs, offset)
        except (KafkaError, AssertionError) as exc:  # AssertionError: aiokafka's state machine, once fatal
            if fenced(exc):
                raise self.fenced_out(tp) from exc
            if isinstance(exc, AssertionError) or not await aborted(producer):
                raise TransactionFailed(f"transaction failed, producer unusable ({exc!r})", Step.RENEW) from exc
            raise TransactionFailed(f"transaction failed ({exc!r})", Step.CHECK) from exc
        return Step.DONE

    def fenced_out(self, tp: TopicPartition) -> OutputsLost:
        return OutputsLost(f"{transactional_id(self.settings, tp)} was fenced: another worker owns it")

    async def transact(self, producer: AIOKafkaProducer, tp: TopicPartition, outputs: PartitionOutputs,
                       offset: int) -> None:  # fmt: skip
        publisher = BatchPublisher(producer, self.partition_counts)
        await producer.begin_transaction()
        answers = SiteTopics.of(self.settings).predictions_for(tp.topic)  # a site's valuations: its own topic
        pending = await publisher.send(answers, outputs.predictions)
        pending += await publisher.send(self.settings.dlq_topic, outputs.dead_letters)
        await producer.send_offsets_to_transaction({tp: offset}, self.settings.consumer_group)
        await producer.commit_transaction()
        await asyncio.gather(*pending)

    async def renew(self, tp: TopicPartition) -> None:
        """A new producer for ``tp`` (same transactional id: it aborts the broken one's open transaction)."""
        log.warning("%s[%d]: replacing a transactional producer that cannot go on", tp.topic, tp.partition)
        fresh = await self.fenced_producer(tp)
        broken, self.producers[tp] = self.producers[tp], fresh
        await asyncio.gather(broken.stop(), return_exceptions=True)


def fenced(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) says another producer with our transactional id took over."""
    while exc is not None:
        if isinstance(exc, ProducerFenced):
            return True
        exc = exc.__cause__
    return False


async def aborted(producer: AIOKafkaProducer) -> bool:
    """Abort after a failed attempt so the next one can begin; False when the producer cannot (it is fatal)."""
    try:
        await producer.abort_transaction()
    except (KafkaError, AssertionError) as exc:  # aiokafka asserts on a transition out of a fatal state
        if fenced(exc):
            raise
        return False
    return True


Outputs = AtLeastOnce | ExactlyOnce


def outputs_for(settings: Settings, consumer: AIOKafkaConsumer) -> Outputs:
    if settings.processing_guarantee == "exactly_once":
        return ExactlyOnce(settings, consumer)
    return AtLeastOnce(settings, consumer)

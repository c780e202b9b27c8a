"""Exactly-once outputs against the real broker: a fenced worker cannot commit, and read_committed readers
(the audits, the drift monitor) never see what an aborted transaction wrote."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pricemyride.kafka import aiokafka_options
from pricemyride.settings import Settings
from pricemyride.topics import ensure_topics, read_topic
from stream_workers.outputs import ExactlyOnce, OutputsLost, PartitionOutputs, transactional_id
from stream_workers.publishing import OutRecord

pytestmark = pytest.mark.integration


@pytest.fixture
def own_topics(settings: Settings) -> Settings:
    """Topics and a group of this test's own (the session's worker writes to the shared ones)."""
    name = f"eos{uuid.uuid4().hex[:6]}"
    topics = {f"{t}_topic": f"{name}.{t}" for t in ("listings", "dlq", "predictions", "retrain", "model_updates")}
    own = settings.model_copy(update=topics | {"consumer_group": f"pricemyride-{name}"})
    ensure_topics(own)
    return own


async def holding(settings: Settings, tp: TopicPartition) -> tuple[AIOKafkaConsumer, ExactlyOnce]:
    """A worker's consumer and outputs that were just given ``tp`` (as a rebalance would)."""
    consumer = AIOKafkaConsumer(**aiokafka_options(settings), group_id=settings.consumer_group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    consumer.assign([tp])
    outputs = ExactlyOnce(settings, consumer)
    await outputs.hold({tp})
    return consumer, outputs


async def committed_reaches(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
    """The transaction's offset shows once the coordinator wrote its commit marker (just after it answered)."""
    for _ in range(50):
        if await consumer.committed(tp) == offset:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected the committed offset of {tp} to reach {offset}, got {await consumer.committed(tp)}")


def record(value: bytes) -> PartitionOutputs:
    return PartitionOutputs(predictions=[OutRecord(0, b"listing-1", value)])


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_worker_whose_partition_moved_on_cannot_commit(own_topics: Settings) -> None:
    tp = TopicPartition(own_topics.listings_topic, 0)

    async def scenario() -> None:
        zombie_consumer, zombie = await holding(own_topics, tp)
        await zombie.commit(tp, record(b"first, by the old owner"), offset=1)
        owner_consumer, owner = await holding(own_topics, tp)  # fences the old owner's producer
        assert owner.floors == {tp: 1}, "the new owner starts after the old owner's committed transaction"
        with pytest.raises(OutputsLost, match="fenced"):
            await zombie.commit(tp, record(b"second, by the fenced owner"), offset=2)
        await owner.commit(tp, record(b"second, by the new owner"), offset=2)
        await committed_reaches(owner_consumer, tp, 2)
        for outputs, consumer in ((zombie, zombie_consumer), (owner, owner_consumer)):
            await outputs.stop()
            await consumer.stop()

    run(scenario)
    values = [m.value for m in read_topic(own_topics, own_topics.predictions_topic)]
    assert values == [b"first, by the old owner", b"second, by the new owner"]


def test_read_committed_readers_never_see_an_aborted_transaction(own_topics: Settings) -> None:
    tp = TopicPartition(own_topics.listings_topic, 1)

    async def scenario() -> None:
        crashed = AIOKafkaProducer(**aiokafka_options(own_topics), transactional_id=transactional_id(own_topics, tp),
                                   enable_idempotence=True)  # fmt: skip
        await crashed.start()
        await crashed.begin_transaction()
        await crashed.send_and_wait(own_topics.predictions_topic, b"written, never committed", partition=1)
        # the worker dies here; whoever is given the partition next fences it, which aborts the transaction
        consumer, successor = await holding(own_topics, tp)
        await successor.commit(tp, PartitionOutputs(predictions=[OutRecord(1, b"k", b"committed")]), offset=1)
        await successor.stop()
        await consumer.stop()
        await crashed.stop()

    run(scenario)
    committed = [m.value for m in read_topic(own_topics, own_topics.predictions_topic)]
    everything = [m.value for m in read_topic(own_topics, own_topics.predictions_topic, committed_only=False)]
    assert committed == [b"committed"]
    assert everything == [b"written, never committed", b"committed"]

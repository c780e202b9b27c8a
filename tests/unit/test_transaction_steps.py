"""``ExactlyOnce.commit``'s steps with stand-in clients (the real broker's fencing is in
tests/integration/test_exactly_once.py): a failed transaction is aborted and checked before it is tried
again, a commit whose answer was lost is not made twice, a producer that cannot abort is replaced, a fence
ends it."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, ProducerFenced

from pricemyride.retry import Backoff
from pricemyride.settings import Settings
from stream_workers import outputs as outputs_module
from stream_workers.outputs import ExactlyOnce, OutputsLost, PartitionOutputs

TP = TopicPartition("listings", 0)


class Consumer:
    def __init__(self) -> None:
        self.offset: int | None = None

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.offset


class Producer:
    """Records what it is asked; its first ``failures`` commits fail (``landed``: after Kafka took them)."""

    def __init__(self, consumer: Consumer, failures: int = 0, landed: bool = False, abortable: bool = True,
                 fence: bool = False) -> None:  # fmt: skip
        self.consumer, self.failures, self.landed, self.abortable, self.fence = (
            consumer,
            failures,
            landed,
            abortable,
            fence,
        )
        self.calls: list[str] = []
        self.offsets: dict[TopicPartition, int] = {}

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def begin_transaction(self) -> None:
        self.calls.append("begin")

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group: str) -> None:
        self.offsets = offsets

    async def commit_transaction(self) -> None:
        if self.fence:
            raise ProducerFenced()
        if self.failures:
            self.failures -= 1
            if self.landed:
                self.consumer.offset = self.offsets[TP]
            raise KafkaConnectionError("the broker went away")
        self.calls.append("commit")
        self.consumer.offset = self.offsets[TP]

    async def abort_transaction(self) -> None:
        if not self.abortable:
            raise AssertionError("aiokafka: transition from a fatal state")
        self.calls.append("abort")

    async def stop(self) -> None:
        self.calls.append("stop")


def outputs(monkeypatch: pytest.MonkeyPatch, producer: Producer, consumer: Consumer) -> ExactlyOnce:
    monkeypatch.setattr(outputs_module, "Backoff", functools.partial(Backoff, delay_s=0.0))
    made = ExactlyOnce(Settings(), consumer)  # type: ignore[arg-type]
    made.producers[TP] = producer  # type: ignore[assignment]
    return made


def commit(made: ExactlyOnce, offset: int = 5) -> None:
    asyncio.run(made.commit(TP, PartitionOutputs(), offset))


def test_a_failed_transaction_is_aborted_checked_and_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = Consumer()
    producer = Producer(consumer, failures=1)
    commit(outputs(monkeypatch, producer, consumer))
    assert producer.calls == ["begin", "abort", "begin", "commit"]
    assert consumer.offset == 5


def test_a_commit_whose_answer_was_lost_is_not_made_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = Consumer()
    producer = Producer(consumer, failures=1, landed=True)
    commit(outputs(monkeypatch, producer, consumer))
    assert producer.calls == ["begin", "abort"], "the check found the offset committed: no second transaction"
    assert consumer.offset == 5


def test_a_producer_that_cannot_abort_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = Consumer()
    broken, fresh = Producer(consumer, failures=1, abortable=False), Producer(consumer)
    made = outputs(monkeypatch, broken, consumer)

    async def fenced_producer(tp: TopicPartition) -> Any:
        return fresh

    monkeypatch.setattr(made, "fenced_producer", fenced_producer)
    commit(made)
    assert broken.calls == ["begin", "stop"]
    assert fresh.calls == ["begin", "commit"]
    assert made.producers[TP] is fresh  # type: ignore[comparison-overlap]


def test_a_fence_ends_it_with_the_outputs_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = Consumer()
    with pytest.raises(OutputsLost, match="was fenced"):
        commit(outputs(monkeypatch, Producer(consumer, fence=True), consumer))
    assert consumer.offset is None

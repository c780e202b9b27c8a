"""Batch publishing: records grouped into record batches per output partition, co-partitioned with listings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from pricemyride.storage import DeadLetterRow
from stream_workers.outputs import MAX_DLQ_KEY, MAX_DLQ_VALUE, dead_letter_record
from stream_workers.publishing import BatchPublisher, OutRecord


class FakeBatch:
    def __init__(self, capacity: int) -> None:
        self.capacity, self.records = capacity, []  # type: ignore[var-annotated]

    def append(self, *, key: bytes | None, value: bytes, timestamp: None, headers: list[Any]) -> object | None:
        if len(self.records) >= self.capacity and (self.records or self.capacity == 0):
            return None
        self.records.append((key, value, headers))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class FakeProducer:
    """The three aiokafka producer calls BatchPublisher uses; batches hold ``capacity`` records."""

    def __init__(self, partitions: int, capacity: int = 100) -> None:
        self.partitions, self.capacity = partitions, capacity
        self.sent: list[tuple[str, int, list[Any]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.sent.append((topic, partition, batch.records))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def publish(producer: FakeProducer, records: list[OutRecord]) -> None:
    async def run() -> None:
        await asyncio.gather(*await BatchPublisher(producer).send("out", records))  # type: ignore[arg-type]

    asyncio.run(run())


def test_each_record_goes_to_its_listings_partition_in_order() -> None:
    producer = FakeProducer(partitions=4)
    records = [OutRecord(p, f"k{i}".encode(), f"v{i}".encode()) for i, p in enumerate([0, 3, 0, 1, 3])]
    publish(producer, records)
    by_partition = {partition: [key for key, _, _ in batch] for _, partition, batch in producer.sent}
    assert by_partition == {0: [b"k0", b"k2"], 3: [b"k1", b"k4"], 1: [b"k3"]}


def test_fewer_output_partitions_wrap_around() -> None:
    producer = FakeProducer(partitions=1)
    publish(producer, [OutRecord(p, None, b"x", [("dlq.reason", b"why")]) for p in range(3)])
    assert [(partition, len(batch)) for _, partition, batch in producer.sent] == [(0, 3)]
    assert producer.sent[0][2][0][2] == [("dlq.reason", b"why")]


def test_a_full_batch_is_sent_and_a_new_one_started() -> None:
    producer = FakeProducer(partitions=2, capacity=2)
    publish(producer, [OutRecord(0, None, f"v{i}".encode()) for i in range(5)])
    assert [len(batch) for _, _, batch in producer.sent] == [2, 2, 1]
    assert [value for _, _, batch in producer.sent for _, value, _ in batch] == [f"v{i}".encode() for i in range(5)]


def test_a_record_too_big_for_an_empty_batch_is_refused_with_its_size() -> None:
    producer = FakeProducer(partitions=1, capacity=0)
    with pytest.raises(ValueError, match=r"expected a record below .* got key b'k' with 3 bytes"):
        publish(producer, [OutRecord(0, b"k", b"abc")])


def test_a_huge_dead_letter_is_cut_on_kafka_and_says_so() -> None:
    row = DeadLetterRow("listings", 3, 9, b"k", b"x" * (MAX_DLQ_VALUE + 10), "listing: too big", datetime.now(UTC))
    record = dead_letter_record(row)
    assert (record.source_partition, record.key, len(record.value)) == (3, b"k", MAX_DLQ_VALUE)
    assert dict(record.headers)["dlq.truncated_from"] == str(MAX_DLQ_VALUE + 10).encode()
    assert dict(record.headers)["dlq.reason"] == b"listing: too big"


def test_a_huge_key_is_cut_on_kafka_and_says_so() -> None:
    row = DeadLetterRow("listings", 1, 4, b"k" * 900_000, b"{}", "id: required field is missing", datetime.now(UTC))
    record = dead_letter_record(row)
    assert (len(record.key or b""), record.value) == (MAX_DLQ_KEY, b"{}")
    assert dict(record.headers)["dlq.key_truncated_from"] == b"900000"

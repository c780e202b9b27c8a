"""The pure parts of exactly-once outputs: grouping a batch by input partition, the records a worker may
score after an assignment, and telling a fence from other producer failures."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, ProducerFenced

from pricemyride.storage import DeadLetterRow
from stream_workers.delivery import current
from stream_workers.outputs import by_partition, fenced
from stream_workers.scoring import Published, ScoredBatch

TOPIC = "listings"


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC, partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


def test_a_batch_is_grouped_by_the_input_topic_and_partition_each_output_answers() -> None:
    site = f"{TOPIC}.site-a"
    dead = DeadLetterRow(TOPIC, 2, 7, b"x", b"{", "listing: expected JSON", datetime.now(UTC))
    batch = ScoredBatch(rows=[], published=[Published(0, b"a", b"pa", TOPIC), Published(2, b"b", b"pb", TOPIC),
                                            Published(0, b"c", b"pc", TOPIC), Published(0, b"d", b"pd", site)],
                        dead_letters=[dead])  # fmt: skip
    grouped = by_partition(batch)
    assert sorted((tp.topic, tp.partition) for tp in grouped) == [(TOPIC, 0), (TOPIC, 2), (site, 0)]
    assert [r.value for r in grouped[TopicPartition(TOPIC, 0)].predictions] == [b"pa", b"pc"]
    assert [r.value for r in grouped[TopicPartition(site, 0)].predictions] == [b"pd"]
    assert [r.key for r in grouped[TopicPartition(TOPIC, 2)].dead_letters] == [b"x"]
    assert grouped[TopicPartition(TOPIC, 0)].dead_letters == []


def test_records_below_the_committed_floor_or_of_partitions_not_held_are_not_scored() -> None:
    p0, p1, p2 = (TopicPartition(TOPIC, p) for p in range(3))
    fetched = {p0: [record(0, o) for o in range(5, 10)], p1: [record(1, o) for o in range(3)],
               p2: [record(2, o) for o in range(2)]}  # fmt: skip
    kept = current(fetched, held={p0, p1}, floors={p0: 7, p1: 3})
    assert {tp: [m.offset for m in records] for tp, records in kept.items()} == {p0: [7, 8, 9]}


def test_records_at_or_above_the_floor_pass_untouched() -> None:
    p0 = TopicPartition(TOPIC, 0)
    records = [record(0, o) for o in range(10, 13)]
    assert current({p0: records}, held={p0}, floors={p0: 10})[p0] is records


def test_a_fence_is_told_apart_from_a_broken_connection() -> None:
    wrapped = KafkaConnectionError("then the connection closed")
    wrapped.__cause__ = ProducerFenced()
    assert fenced(wrapped)
    assert not fenced(KafkaConnectionError("broker went away"))
    assert not fenced(AssertionError("Invalid state transition"))

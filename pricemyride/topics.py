"""Kafka topics of the system, created with explicit partition counts."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from pricemyride.kafka import kafka_python_options
from pricemyride.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    """A topic and its partition count."""

    name: str
    partitions: int


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Listings and predictions are partitioned by listing id; control topics keep their order."""
    return [
        TopicSpec(settings.listings_topic, settings.listings_partitions),
        TopicSpec(settings.predictions_topic, settings.listings_partitions),
        TopicSpec(settings.dlq_topic, 1),
        TopicSpec(settings.retrain_topic, 1),
        TopicSpec(settings.model_updates_topic, 1),
    ]


def topic_configs(settings: Settings) -> dict[str, str]:
    """Durability of every topic: a write acknowledged by ``min.insync.replicas`` replicas, and a replica that
    missed writes never becomes leader (unclean election off), so an acknowledged listing is never lost."""
    return {"min.insync.replicas": str(settings.min_insync_replicas), "unclean.leader.election.enable": "false"}


def new_topic(settings: Settings, spec: TopicSpec) -> NewTopic:
    return NewTopic(spec.name, spec.partitions, settings.replication_factor, topic_configs=topic_configs(settings))


def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; return the names created."""
    admin = KafkaAdminClient(**kafka_python_options(settings), client_id="pricemyride-admin")
    try:
        existing = set(admin.list_topics())
        missing = [s for s in topic_specs(settings) if s.name not in existing]
        for spec in missing:
            try:
                admin.create_topics([new_topic(settings, spec)])
            except TopicAlreadyExistsError:
                log.info("topic %s was created concurrently", spec.name)
        return [s.name for s in missing]
    finally:
        admin.close()


def read_topic(settings: Settings, topic: str, timeout_s: float = 10, committed_only: bool = True) -> list[Any]:
    """Every message currently in ``topic``, from the beginning (for audits, tests and demos); by default only
    what committed transactions wrote (``read_committed``), as every reader of the outputs sees them. Gives
    up after ``timeout_s`` without a record (an open transaction holds read_committed readers back)."""
    consumer = KafkaConsumer(
        **kafka_python_options(settings),
        isolation_level="read_committed" if committed_only else "read_uncommitted",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.seek_to_beginning(*partitions)
        messages: list[Any] = []
        idle_until = time.monotonic() + timeout_s  # give up after timeout_s without a record
        # A position passes commit markers and aborted records too, so it reaches the end without a message.
        while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < idle_until:
            for records in consumer.poll(timeout_ms=500).values():
                messages.extend(records)
                idle_until = time.monotonic() + timeout_s
        return messages
    finally:
        consumer.close()


def uncommitted(settings: Settings) -> int:
    """Messages in ``listings`` whose offsets the scoring group has not committed (its lag)."""
    options = kafka_python_options(settings)
    admin, consumer = KafkaAdminClient(**options), KafkaConsumer(**options)
    try:
        group, topic = settings.consumer_group, settings.listings_topic
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        committed = admin.list_group_offsets(group).get(group, {})
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in partitions)
    finally:
        admin.close()
        consumer.close()


def group_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` committed on ``topic``, by partition."""
    admin = KafkaAdminClient(**kafka_python_options(settings))
    try:
        committed = admin.list_group_offsets(group).get(group, {})
        return {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == topic}
    finally:
        admin.close()

"""Kafka topics of the system, created with explicit partition counts."""

from __future__ import annotations

import logging
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


def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; return the names created."""
    admin = KafkaAdminClient(**kafka_python_options(settings), client_id="pricemyride-admin")
    try:
        existing = set(admin.list_topics())
        missing = [s for s in topic_specs(settings) if s.name not in existing]
        for spec in missing:
            try:
                admin.create_topics([NewTopic(spec.name, spec.partitions, 1)])
            except TopicAlreadyExistsError:
                log.info("topic %s was created concurrently", spec.name)
        return [s.name for s in missing]
    finally:
        admin.close()


def read_topic(settings: Settings, topic: str, timeout_s: float = 10) -> list[Any]:
    """Every message currently in ``topic``, from the beginning (for audits, tests and demos)."""
    consumer = KafkaConsumer(
        **kafka_python_options(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.seek_to_beginning(*partitions)
        messages = []
        for message in consumer:
            messages.append(message)
            if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                break
        return messages
    finally:
        consumer.close()

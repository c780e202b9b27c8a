"""Kafka topics of the system, created with explicit partition counts."""

from __future__ import annotations

import functools
import logging
import re
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


METADATA_MAX_AGE_MS = 60_000  # consumers by pattern see a new site's topic within this (Kafka's default: 5 min)
SITE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # a listing site's name: its topics and its Kafka principal


@dataclass(frozen=True)
class SiteTopics:
    """Where each listing site's events come in and its valuations go out: ``<listings>.<site>`` and
    ``<predictions>.<site>``. Only the site's principal may write its listings topic (pricemyride.access), so the
    topic a listing arrived on names the site that sent it; the plain ``listings`` topic is the operator's own."""

    listings: str
    predictions: str
    dlq: str

    @classmethod
    def of(cls, settings: Settings) -> SiteTopics:
        return cls(settings.listings_topic, settings.predictions_topic, settings.dlq_topic)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - a few instances live as long as the process: asked per message
    def site_of(self, topic: str) -> str | None:
        """The site that owns a listings topic; None for the operator's own ``listings`` (or any other topic)."""
        site = topic.removeprefix(self.listings + ".")
        return site if site != topic and topic != self.dlq and SITE_NAME.fullmatch(site) else None

    def predictions_for(self, listings_topic: str) -> str:
        """The topic that answers a listings topic: a site's valuations go to its own predictions topic."""
        site = self.site_of(listings_topic)
        return f"{self.predictions}.{site}" if site else self.predictions

    def listings_pattern(self) -> str:
        """What scoring workers subscribe to: the operator's listings topic and every site's."""
        return rf"^(?!{re.escape(self.dlq)}$){re.escape(self.listings)}(\.{SITE_NAME.pattern})?$"

    def predictions_pattern(self) -> str:
        """What the drift monitor reads: every predictions topic."""
        return rf"^{re.escape(self.predictions)}(\.{SITE_NAME.pattern})?$"


def site_name(name: str) -> str:
    """``name`` if it can name a site (lower-case letters, digits, dashes; 1-40), else a one-line error."""
    if not SITE_NAME.fullmatch(name) or name == "dlq":
        raise ValueError(f"site name: expected 1-40 lower-case letters, digits or dashes (not 'dlq'), got {name!r:.60}")
    return name


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

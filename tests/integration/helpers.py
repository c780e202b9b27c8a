"""Small helpers for integration tests: waiting, counting rows, reading topics, consumer lag."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from pricemyride.settings import Settings
from pricemyride.topics import read_topic

__all__ = ["consumer_lag", "query", "read_topic", "scalar", "wait_for"]


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def query(settings: Settings, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        return conn.execute(statement, params).fetchall()


def scalar(settings: Settings, statement: str, params: Any = None) -> Any:
    return query(settings, statement, params)[0][0]


def consumer_lag(settings: Settings) -> int:
    """Messages in the listings topic that the scoring group has not committed yet."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        partitions = [
            TopicPartition(settings.listings_topic, p)
            for p in consumer.partitions_for_topic(settings.listings_topic) or ()
        ]
        ends = consumer.end_offsets(partitions)
        committed = admin.list_group_offsets(settings.consumer_group).get(settings.consumer_group, {})
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in partitions)
    finally:
        consumer.close()
        admin.close()

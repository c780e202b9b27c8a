"""Replay listings into Kafka as a listing site would: a Craigslist-format file, or the built-in generator.

The producer does not validate — dirt reaches the workers, which dead-letter what breaks the contract.
Rows without an id get a stable one (``<file stem>-r<row number>``) so a replay keeps the same keys.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from kafka import KafkaProducer

from pricemyride.datafile import given_fields, read_listings_file
from pricemyride.generator import generate_listings
from pricemyride.kafka import kafka_python_options
from pricemyride.progress import progress as show_progress
from pricemyride.settings import Settings

GENERATOR_CHUNK = 1_000


@dataclass
class ReplaySummary:
    """What a replay did: events handed to Kafka, acknowledged, and failed."""

    source: str
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"source={self.source} sent={self.sent} acknowledged={self.acknowledged} failed={self.failed}"


def row_event(row: dict[str, Any], source: str, fallback_id: str, now: datetime) -> dict[str, Any]:
    """A file row as a listing event: Craigslist fields that have a value, plus event metadata."""
    event = given_fields(row)
    event["id"] = str(event.get("id") or fallback_id)
    event.update(event_id=str(uuid.uuid4()), source=source, event_time=now.isoformat())
    return event


def file_rows(
    path: Path, order: str | None, limit: int | None, skip: int = 0
) -> tuple[Iterable[tuple[int, dict[str, Any]]], int]:
    frame = read_listings_file(path)
    if order:
        key = (
            pd.to_datetime(frame[order], utc=True, errors="coerce", format="mixed")
            if order == "posting_date"
            else frame[order]
        )
        frame = frame.assign(_key=key).sort_values("_key", kind="stable", na_position="last").drop(columns="_key")
    frame = frame.iloc[skip:]
    if limit is not None:
        frame = frame.head(limit)
    records: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    rows = ((int(i), r) for i, r in zip(frame.index, records, strict=True))
    return rows, len(frame)


def generated_rows(limit: int | None, seed: int) -> Iterator[tuple[int, dict[str, Any]]]:
    counter = itertools.count()
    for chunk in itertools.count():
        records: list[dict[str, Any]] = generate_listings(GENERATOR_CHUNK, seed=seed + chunk).to_dict("records")  # type: ignore[assignment]
        for row in records:
            number = next(counter)
            if limit is not None and number >= limit:
                return
            row["id"] = f"gen-{seed}-{number}"
            yield number, row


def pace(started: float, sent: int, rate: float | None) -> None:
    """Sleep so that ``sent`` events take at least ``sent / rate`` seconds."""
    if rate:
        ahead = started + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def make_producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        **kafka_python_options(settings),
        acks="all",  # every in-sync replica (min.insync.replicas of them) has the listing
        enable_idempotence=True,  # a retried send is written once
        linger_ms=5,
        retries=2**31 - 1,  # a broker outage is waited out for delivery_timeout_ms, then reported as failed
        delivery_timeout_ms=120_000,
        client_id="pricemyride-producer",
    )


def replay(
    settings: Settings,
    data: Path | None,
    rate: float | None = None,
    limit: int | None = None,
    order: str | None = None,
    seed: int = 0,
    progress: bool = True,
    skip: int = 0,
) -> ReplaySummary:
    """Send listings to the listings topic and wait until Kafka acknowledged each."""
    rows: Iterable[tuple[int, dict[str, Any]]]
    total: int | None
    if data is not None:
        rows, total = file_rows(data, order, limit, skip)
        source, stem = f"file:{data.name}", data.stem
    else:
        rows, total, source, stem = generated_rows(limit, seed), limit, "generator", f"gen-{seed}"
    summary = ReplaySummary(source)
    producer = make_producer(settings)

    def on_error(exc: BaseException) -> None:
        summary.failed += 1
        if len(summary.errors) < 10:
            summary.errors.append(repr(exc))

    started = time.monotonic()
    try:
        for number, row in show_progress(rows, "listings sent", total) if progress else rows:
            event = row_event(row, source, f"{stem}-r{number}", datetime.now(UTC))
            future = producer.send(settings.listings_topic, key=event["id"].encode(), value=json.dumps(event).encode())
            future.add_errback(on_error)
            summary.sent += 1
            pace(started, summary.sent, rate)
        producer.flush()
    finally:
        producer.close()
    summary.acknowledged = summary.sent - summary.failed
    return summary

"""The spine on the real broker, database and registry: every event is scored or dead-lettered, once."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaProducer

from pricemyride.datafile import read_listings_file
from pricemyride.errors import InvalidListing
from pricemyride.kafka import kafka_python_options
from pricemyride.parsing import parse_listing
from pricemyride.settings import Settings
from pricing.deal import DEAL_RATINGS, NOT_ENOUGH_INFORMATION
from producers.replay import replay, row_event
from tests.integration.helpers import consumer_lag, query, read_topic, scalar, wait_for

pytestmark = pytest.mark.integration
VALID = 2_000
MALFORMED = 100
SOURCE = "file:listings_2021.csv"  # what the replay of this module's file names as the listings' source


def valid_rows(path: Path, n: int) -> pd.DataFrame:
    """The first ``n`` rows of a real file that satisfy the event contract, with distinct ids."""
    frame = read_listings_file(path)
    now = datetime.now(UTC)
    keep = []
    for number, row in zip(frame.index, frame.to_dict("records"), strict=True):
        try:
            parse_listing(json.dumps(row_event(row, "test", f"row-{number}", now)))
        except InvalidListing:
            continue
        keep.append(number)
        if len(keep) == n:
            break
    chosen = frame.loc[keep].copy()
    chosen["id"] = chosen["id"].fillna(pd.Series([f"row-{i}" for i in keep], index=chosen.index, dtype="string"))
    assert chosen["id"].is_unique
    return chosen


def malformed_events(n: int) -> list[tuple[bytes | None, bytes | None]]:
    """``n`` (key, value) pairs that break the contract in different ways."""
    kinds = [
        lambda i: b"this is not json",
        lambda i: json.dumps({"year": 2015, "manufacturer": "ford"}).encode(),  # no id
        lambda i: json.dumps({"id": f"bad-{i}", "year": 1850}).encode(),
        lambda i: json.dumps({"id": f"bad-{i}", "odometer": -5}).encode(),
        lambda i: json.dumps({"id": f"bad-{i}", "price": "abc"}).encode(),
        lambda i: json.dumps({"id": f"bad-{i}", "fuel": "steam"}).encode(),
        lambda i: b'{"id": "bad-%d", "model": "\xff\xfe broken utf-8"}' % i,
        lambda i: json.dumps({"id": f"bad-{i}", "model": "x" * 100_000}).encode(),
        lambda i: json.dumps({"id": f"bad-{i}", "colour_of_seats": "red"}).encode(),
        lambda i: json.dumps([f"bad-{i}", 2015]).encode(),
    ]
    return [(f"bad-{i}".encode(), kinds[i % len(kinds)](i)) for i in range(n)]


def send_malformed(settings: Settings, events: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(**kafka_python_options(settings), acks="all")
    for key, value in events:
        producer.send(settings.listings_topic, key=key, value=value)
    producer.flush()
    producer.close()


@pytest.fixture(scope="module")
def listings_file(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("listings") / "listings_2021.csv"
    valid_rows(data_dir / "craigslist_2021.csv", VALID).to_csv(path, index=False)
    return path


def counts(settings: Settings) -> tuple[int, int]:
    """Predictions of this module's file, and every dead letter (other modules' listings share the topic)."""
    ours = scalar(settings, "SELECT count(*) FROM predictions WHERE source = %s", [SOURCE])
    return ours, scalar(settings, "SELECT count(*) FROM dead_letters")


def test_every_event_is_scored_or_dead_lettered_exactly_once(
    settings: Settings, worker: Path, champion: int, listings_file: Path
) -> None:
    summary = replay(settings, listings_file, progress=False)
    assert (summary.sent, summary.failed) == (VALID, 0)
    send_malformed(settings, malformed_events(MALFORMED))

    wait_for(lambda: counts(settings) == (VALID, MALFORMED), 180, f"{VALID} predictions and {MALFORMED} dead letters")
    wait_for(lambda: consumer_lag(settings) == 0, 60, "the worker to commit every offset")
    assert scalar(settings, "SELECT count(DISTINCT listing_id) FROM predictions WHERE source = %s", [SOURCE]) == VALID
    assert query(settings, "SELECT DISTINCT model_version FROM predictions") == [(champion,)]
    rows = query(settings, "SELECT price_low, predicted_price, price_high, asking_price, deal_rating FROM predictions")
    assert all(math.isfinite(fair) and 0 < low < fair < high for low, fair, high, _, _ in rows)
    rated = [(asking, rating) for _, _, _, asking, rating in rows if asking is not None and asking >= 500]
    assert rated, "the real listings carry asking prices"
    assert all(rating in {*DEAL_RATINGS, NOT_ENOUGH_INFORMATION} for _, rating in rated)
    assert all(rating is None for _, _, _, asking, rating in rows if asking is None or asking < 500)

    dlq = read_topic(settings, settings.dlq_topic)
    assert len(dlq) == MALFORMED
    reasons = [dict(m.headers)["dlq.reason"].decode() for m in dlq]
    assert all(reasons), "every dead letter carries a reason"
    assert any(r.startswith("id: required field is missing") for r in reasons)
    assert any(r.startswith("year: expected a whole year") for r in reasons)
    assert {dict(m.headers)["dlq.topic"].decode() for m in dlq} == {settings.listings_topic}
    stored = query(settings, "SELECT payload FROM dead_letters WHERE payload = %s", [b"this is not json"])
    assert len(stored) == MALFORMED // 10, "the original bytes are kept"

    # Replaying everything adds no prediction: the upsert is keyed by (listing id, model version).
    replay(settings, listings_file, progress=False)
    send_malformed(settings, malformed_events(MALFORMED))
    wait_for(lambda: counts(settings)[1] == 2 * MALFORMED, 180, "the replayed malformed events")
    wait_for(lambda: consumer_lag(settings) == 0, 60, "the worker to commit the replay")
    assert counts(settings)[0] == VALID


def test_predictions_are_published_with_the_listing(settings: Settings, worker: Path, champion: int) -> None:
    wait_for(lambda: counts(settings)[0] >= VALID, 180, "the pipeline test's predictions")
    messages = read_topic(settings, settings.predictions_topic)
    assert len(messages) >= VALID
    first = json.loads(messages[0].value)
    assert first["model_version"] == champion
    assert first["listing"]["id"] == messages[0].key.decode() == first["listing_id"]
    assert first["price_low"] < first["predicted_price"] < first["price_high"]

"""The market rollups on the real database: a refresh folds new valuations in (a listing counts once, at its
latest valuation), recomputes exactly the periods they touch (a re-posted listing leaves its old day), takes
a late-committed valuation on the next refresh, and runs one at a time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from monitoring import market
from pricemyride.settings import Settings

pytestmark = pytest.mark.integration
DAY = datetime(2019, 6, 5, 9, tzinfo=UTC)  # a Wednesday; its week starts 2019-06-03


def store(conn: psycopg.Connection[Any], make: str, listing_id: str, version: int, fair: float,
          asking: float | None, posted: datetime, scored: datetime, deal: str | None = "fair") -> None:  # fmt: skip
    listing = {"id": listing_id, "manufacturer": make, "model": "civic lx", "type": "sedan", "state": "or",
               "price": asking, "posting_date": posted.isoformat()}  # fmt: skip
    conn.execute(
        "INSERT INTO predictions (source, listing_id, model_version, event_id, predicted_price, price_low, price_high, "
        "deal_rating, asking_price, event_time, scored_at, listing) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s) ON CONFLICT (source, listing_id, model_version) DO UPDATE SET listing = EXCLUDED.listing, "
        "event_time = EXCLUDED.event_time, scored_at = EXCLUDED.scored_at",  # a newer event, as the workers merge it
        ["mkt-test", listing_id, version, uuid.uuid4(), fair, fair * 0.8, fair * 1.25, deal, asking, scored, scored,
         Jsonb(listing)],
    )  # fmt: skip
    conn.commit()


def cell(conn: psycopg.Connection[Any], make: str, kind: str, period: str) -> dict[str, Any] | None:
    cur = conn.execute(
        "SELECT listings, priced, retention, asking_median, fair, high, model_version FROM market_cells "
        "WHERE axis = 'posted' AND segment = 'make' AND value = %s AND period_kind = %s AND period = %s",
        [make, kind, period],
    )
    row = cur.fetchone()
    return dict(zip([d.name for d in cur.description or []], row, strict=True)) if row else None


@pytest.fixture
def conn(settings: Settings) -> Any:
    """A connection to the run's database; the rows a test stored are deleted after it (the suite's other tests
    count the run's predictions and their versions)."""
    with psycopg.connect(settings.database_url.get_secret_value()) as connection:
        yield connection
        connection.rollback()
        connection.execute("DELETE FROM predictions WHERE source = 'mkt-test'")
        connection.execute("DELETE FROM market_listings WHERE source = 'mkt-test'")
        connection.commit()


def test_a_refresh_computes_the_touched_periods_exactly(conn: psycopg.Connection[Any]) -> None:
    make, now = f"mk{uuid.uuid4().hex[:6]}", datetime.now(UTC)
    for i, (fair, asking) in enumerate([(10_000, 8_000), (10_000, 10_000), (10_000, 13_000), (10_000, 1)]):
        store(conn, make, f"{make}-{i}", 1, fair, asking, DAY, now)
    assert market.refresh(conn) is not None
    day, week = cell(conn, make, "day", "2019-06-05"), cell(conn, make, "week", "2019-06-03")
    assert day == week
    assert day is not None
    assert (day["listings"], day["priced"], day["model_version"]) == (4, 3, 1)  # a $1 asking price is no label
    assert day["retention"] == pytest.approx(1.0)
    assert day["asking_median"] == pytest.approx(10_000)
    assert day["fair"] == 4


def test_a_listing_counts_once_at_its_latest_valuation_and_leaves_its_old_day(conn: psycopg.Connection[Any]) -> None:
    make, now = f"mk{uuid.uuid4().hex[:6]}", datetime.now(UTC)
    store(conn, make, f"{make}-a", 1, 10_000, 9_000, DAY, now - timedelta(seconds=5))
    store(conn, make, f"{make}-b", 1, 10_000, 9_000, DAY, now - timedelta(seconds=5))
    market.refresh(conn)
    store(conn, make, f"{make}-a", 2, 12_000, 9_000, DAY, now, deal="high")  # valued again by v2
    store(conn, make, f"{make}-b", 1, 10_000, 9_000, DAY + timedelta(days=1), now)  # re-posted the next day
    market.refresh(conn)
    day = cell(conn, make, "day", "2019-06-05")
    assert day is not None
    assert (day["listings"], day["high"], day["model_version"]) == (1, 1, 2)
    assert day["retention"] == pytest.approx(0.75)
    moved = cell(conn, make, "day", "2019-06-06")
    assert moved is not None
    assert moved["listings"] == 1
    week = cell(conn, make, "week", "2019-06-03")
    assert week is not None
    assert week["listings"] == 2


def test_a_valuation_committed_late_is_folded_in_by_the_next_refresh(conn: psycopg.Connection[Any]) -> None:
    make = f"mk{uuid.uuid4().hex[:6]}"
    market.refresh(conn)
    through = conn.execute("SELECT scored_through FROM market_refresh").fetchone()[0]  # type: ignore[index]
    store(conn, make, f"{make}-late", 1, 10_000, 9_000, DAY, through - market.OVERLAP / 2)  # scored before it
    market.refresh(conn)
    day = cell(conn, make, "day", "2019-06-05")
    assert day is not None
    assert day["listings"] == 1


def test_one_refresh_at_a_time(settings: Settings, conn: psycopg.Connection[Any]) -> None:
    with psycopg.connect(settings.database_url.get_secret_value()) as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(%s)", [market.LOCK])
        assert market.refresh(conn) is None
    assert market.refresh(conn) is not None

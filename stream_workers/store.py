"""The worker's Postgres: one transaction per batch, waited out through an outage; the dead letters' retention."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from pricemyride.retry import every, retried
from pricemyride.settings import Settings
from pricemyride.storage import (
    ShadowDrop,
    ShadowRow,
    delete_old_dead_letters,
    prepare_session,
    write_outputs,
    write_shadow,
)
from stream_workers.scoring import ScoredBatch
from stream_workers.steps import StepTimes

log = logging.getLogger(__name__)
ShadowOutcome = tuple[list[ShadowRow], list[ShadowDrop]]  # a shadow's prices of a batch, and its drops
PRUNE_EVERY_S = 3600.0  # how often a worker deletes the dead letters past their retention


class Store:
    """One connection, opened when first needed and again after a database error."""

    def __init__(self, settings: Settings, times: StepTimes | None = None) -> None:
        self.settings, self.times = settings, times or StepTimes()
        self.conn: psycopg.AsyncConnection[Any] | None = None

    async def store(self, batch: ScoredBatch, shadow: asyncio.Future[ShadowOutcome] | None = None) -> None:
        """Write the batch in one transaction — its predictions and dead letters, then the shadow's prices of it
        (``shadow``: priced on the shadow's thread meanwhile; a future, so a retry awaits the same outcome).
        On a database error back off and retry: the batch is never dropped."""

        async def write() -> None:
            conn = await self.connected()
            async with conn.transaction():
                await write_outputs(conn, batch.rows, batch.dead_letters)
                if shadow is not None:
                    with self.times.step("shadow"):  # only the wait the champion's rows did not hide
                        rows, drops = await shadow
                    await self.store_shadow(conn, rows, drops)

        await retried(write, psycopg.OperationalError, "postgres write", on_failure=self.drop_connection)

    async def store_shadow(self, conn: psycopg.AsyncConnection[Any], rows: list[ShadowRow], drops: list[ShadowDrop]
                           ) -> None:  # fmt: skip
        """In a savepoint: shadow rows the database refuses are logged and left out, and never hold back the
        champion's (a refusal would come back with every redelivery of the batch). A lost connection is retried."""
        try:
            async with conn.transaction():
                await write_shadow(conn, rows, drops)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            log.error("shadow prices of a batch not stored (%d rows, %d drops): %s: %s", len(rows), len(drops),
                      type(exc).__name__, str(exc)[:200])  # fmt: skip

    async def connected(self) -> psycopg.AsyncConnection[Any]:
        if self.conn is None or self.conn.closed:
            conn = await psycopg.AsyncConnection.connect(self.settings.database_url.get_secret_value())
            try:
                await prepare_session(conn)
            except BaseException:
                await conn.close()
                raise
            self.conn = conn
        return self.conn

    async def drop_connection(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        self.conn = None


async def prune_every(settings: Settings, every_s: float = PRUNE_EVERY_S) -> None:
    """Prune the dead letters when the worker starts, then every ``every_s`` (off the event loop)."""
    await every(every_s, lambda: prune_dead_letters(settings), "pruning the dead letters")


def prune_dead_letters(settings: Settings) -> None:
    """Delete the dead letters older than the retention setting; a database that does not answer is logged,
    and the next run tries again (every worker runs it; one at a time holds the lock, the others skip)."""
    before = datetime.now(UTC) - timedelta(days=settings.dead_letter_retention_days)
    try:
        with psycopg.connect(settings.database_url.get_secret_value(), connect_timeout=10) as conn:
            deleted = delete_old_dead_letters(conn, before)
    except psycopg.Error as exc:
        log.warning("dead letters not pruned (%s); trying again in an hour", type(exc).__name__)
        return
    if deleted:
        log.info("deleted %d dead letters stored before %s", deleted, before.isoformat(timespec="seconds"))

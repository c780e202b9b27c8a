"""The API's long-lived parts, started and stopped with the process: the reader's connection pool, the keys,
the rate limits, the champion (followed on ``model-updates`` like a worker's) and the publisher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from api.guards import RateLimits
from api.keys import KeyBook
from api.metrics import ApiModelMetrics
from api.publish import Publisher
from pricemyride.errors import PriceMyRideError
from pricemyride.settings import Settings
from training.champion import Champion, follow_model_updates, freeze_heap, poll_registry
from training.registry import LoadedModel

log = logging.getLogger(__name__)
T = TypeVar("T")


async def fast_json(conn: psycopg.AsyncConnection[Any]) -> None:
    """jsonb read with orjson (the comparables' listings): a third of the json module's time."""
    set_json_loads(orjson.loads, conn)


class NotReady(PriceMyRideError):
    """Answered 503: the API cannot value yet (no champion loaded)."""


@dataclass
class Service:
    settings: Settings
    pool: AsyncConnectionPool = field(init=False)
    keys: KeyBook = field(init=False)
    limits: RateLimits = field(init=False)
    champion: Champion = field(init=False)
    publisher: Publisher = field(init=False)
    pricing: ThreadPoolExecutor = field(init=False)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        reader = self.settings.reader_database_url.get_secret_value()
        self.pool = AsyncConnectionPool(reader, min_size=2, max_size=8, open=False, kwargs={"autocommit": True},
                                        configure=fast_json)  # fmt: skip
        self.keys = KeyBook(self.pool, self.settings.api_key_cache_s)
        self.limits = RateLimits(self.settings.api_rate_per_minute)
        self.champion = Champion(self.settings, ApiModelMetrics(), database_url=reader)
        self.publisher = Publisher(self.settings)
        self.pricing = ThreadPoolExecutor(self.settings.api_threads, "pricing")

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` on a pricing thread: the event loop keeps answering while a model runs."""
        return await asyncio.get_running_loop().run_in_executor(self.pricing, work, *args)

    async def start(self) -> None:
        await self.pool.open()
        self.champion.preload()
        self.tasks = [asyncio.create_task(coro) for coro in (self.first_model(), self.follow(), self.poll())]

    async def first_model(self) -> None:
        """The champion, then the heap frozen as a worker's is (``freeze_heap``): a full collection walking
        the model's and the modules' objects stalled requests by ~250 ms every so often."""
        await self.champion.wait()
        freeze_heap(collect=True)

    async def follow(self) -> None:
        """``model-updates`` as a worker reads them; a broker away for a while is retried, not fatal."""
        while True:
            try:
                await follow_model_updates(self.settings, self.champion)
            except Exception as exc:  # noqa: BLE001 - valuations go on with the model in hand
                log.warning("model-updates: %s: %s; following again in 5 s", type(exc).__name__, exc)
                await asyncio.sleep(5)

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.registry_poll_s)
            if self.champion.model is not None:
                await poll_registry(self.settings, self.champion)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.publisher.stop()
        await self.pool.close()
        self.pricing.shutdown(wait=False)

    async def model(self) -> LoadedModel:
        """The champion for this request (a successor loaded meanwhile is swapped in here)."""
        if self.champion.model is None:
            raise NotReady("valuation: expected a champion model loaded, got none yet (see /readyz)")
        return await self.champion.for_batch()

    async def failing(self) -> list[str]:
        """The readiness checks that fail: a champion loaded, the database answering."""
        failed = [] if self.champion.model is not None else ["model"]
        try:
            async with self.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure is a failing check
            failed.append("database")
        return failed

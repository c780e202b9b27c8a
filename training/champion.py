"""The champion in a serving process (a scoring worker, the valuation API): loaded once at start, followed on
``model-updates`` and by polling the registry, swapped in between batches (or requests) so that every batch
is scored by exactly one version.

Only a crowned version is ever loaded (``training.registry.require_crowned``: the promotion the gate
recorded); a version that cannot be loaded is refused with the reason, and the worker keeps the one it has.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from pricemyride.errors import PriceMyRideError, UncrownedModel
from pricemyride.events import ModelUpdate
from pricemyride.kafka import aiokafka_options
from pricemyride.listing import Listing
from pricemyride.settings import Settings
from pricemyride.storage import PredictionRow, ShadowDrop, ShadowRow
from pricing.path import predict_prices
from training.registry import LoadedModel, champion_version, configure, load_champion, load_version, require_crowned
from training.shadow import active_shadow, load_shadow

log = logging.getLogger(__name__)


class ModelMetrics(Protocol):
    """What a serving process counts about its model (the worker's and the API's Prometheus metrics)."""

    def model(self, version: int, swapped: bool = False) -> None: ...

    def load_failed(self, uncrowned: bool = False) -> None: ...


class ShadowMetrics(Protocol):
    """What a worker counts about its shadow."""

    def shadow(self, version: int | None, rows: int = 0, dropped: bool = False) -> None: ...


class Uncounted:
    def model(self, version: int, swapped: bool = False) -> None:
        return None

    def load_failed(self, uncrowned: bool = False) -> None:
        return None

    def shadow(self, version: int | None, rows: int = 0, dropped: bool = False) -> None:
        return None


def single_threaded(loaded: LoadedModel) -> LoadedModel:
    """One prediction thread per worker process; workers scale by processes (see PriceModel.use_threads)."""
    use_threads = getattr(loaded.model, "use_threads", None)
    if use_threads is not None:
        use_threads(1)
    return loaded


def freeze_heap(collect: bool) -> None:
    """Move every object alive now (modules, the model, faust's services) out of the cyclic collector's
    sight: they live as long as the process, yet each full collection walked all ~360,000 of them — a
    200 ms stall, the worst of the p99 at 1,000 listings/s. Refcounting still frees them as usual."""
    if collect:
        gc.collect()  # the garbage of start-up is freed, not frozen
    gc.freeze()


def load_streaming_champion(settings: Settings, database_url: str | None = None) -> LoadedModel:
    return single_threaded(load_champion(settings, database_url))


def load_crowned(settings: Settings, version: int, database_url: str | None = None) -> LoadedModel:
    """``version`` from the registry, once its promotion is confirmed (blocking: run it in a thread).
    ``database_url``: where the promotion record is read (default: the writer's; the API reads as the reader)."""
    require_crowned(settings, version, database_url)
    return single_threaded(load_version(configure(settings), settings, version))


class Champion:
    """The model in use, and a successor being loaded.

    A new version is loaded off the hot path (a thread) and swapped in by ``for_batch``, between batches.
    """

    def __init__(
        self, settings: Settings, metrics: ModelMetrics | None = None, database_url: str | None = None
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.metrics: ModelMetrics = metrics or Uncounted()
        self.preloading: concurrent.futures.Future[LoadedModel] | None = None
        self.model: LoadedModel | None = None
        self.pending: LoadedModel | None = None
        self.loading: int | None = None
        self.wanted: int | None = None  # the version last offered

    def preload(self) -> None:
        """Start loading the champion now, in a thread, so it overlaps faust's own start-up."""
        executor = concurrent.futures.ThreadPoolExecutor(1, "preload")
        self.preloading = executor.submit(load_streaming_champion, self.settings, self.database_url)

    async def ready(self) -> LoadedModel:
        if self.model is None:
            if self.preloading is not None:
                self.model = await asyncio.wrap_future(self.preloading)
            else:
                loop = asyncio.get_running_loop()
                self.model = await loop.run_in_executor(None, load_streaming_champion, self.settings, self.database_url)
            log.info("scoring with %s version %d", self.settings.model_name, self.model.version)
            self.metrics.model(self.model.version)
        return self.model

    async def wait(self) -> LoadedModel:
        """The champion; with none loadable the worker stays up but not ready (``model_loaded`` 0, which
        the PriceMyRideNoChampionLoaded alert watches) and tries again every ``registry_poll_s``."""
        while True:
            try:
                return await self.ready()
            except PriceMyRideError as exc:
                self.preloading = None
                log.error("cannot start scoring: %s; trying again in %.0f s", exc, self.settings.registry_poll_s)
                await asyncio.sleep(self.settings.registry_poll_s)

    async def for_batch(self) -> LoadedModel:
        """The model for the next batch: a loaded successor replaces the current one here, between batches."""
        current = await self.ready()
        if self.pending is not None and self.pending.version != current.version:
            log.warning("hot swap: version %d → %d", current.version, self.pending.version)
            self.model, current = self.pending, self.pending
            self.metrics.model(current.version, swapped=True)
        self.pending = None
        return current

    async def offer(self, version: int, why: str) -> None:
        """Load ``version`` in the background if it is new; keep serving the current model meanwhile. The latest
        offer wins: a rollback announced while a promotion is loading, or waiting for the next batch, cancels it."""
        self.wanted = version
        if version == (self.model and self.model.version):
            if self.pending is not None:
                log.warning("version %d is the champion again: swap to %d cancelled", version, self.pending.version)
                self.pending = None
            return
        if version in {self.pending and self.pending.version, self.loading}:
            return
        self.loading = version
        log.info("loading %s version %d (%s)", self.settings.model_name, version, why)
        try:
            loop = asyncio.get_running_loop()
            loaded = await loop.run_in_executor(None, load_crowned, self.settings, version, self.database_url)
            if self.wanted != version:
                log.warning("version %d is loaded, but %d was announced since: no swap to it", version, self.wanted)
                return
            self.pending = loaded
            freeze_heap(collect=False)  # the new version's objects; no full collection while scoring
            log.info("version %d is loaded; it scores from the next batch on", version)
        except Exception as exc:  # noqa: BLE001 - a bad version must not stop scoring
            current = self.model.version if self.model else None
            self.metrics.load_failed(uncrowned=isinstance(exc, UncrownedModel))
            log.error("cannot load version %d (%s: %s); keeping version %s", version, type(exc).__name__, exc, current)
        finally:
            self.loading = None


WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Pending:
    """A shadow's prices of one batch, being computed on its thread."""

    version: int
    size: int
    rows: asyncio.Future[list[ShadowRow]]


def shadow_rows(model: LoadedModel, champion: int, rows: Sequence[PredictionRow], listings: Sequence[Listing]
                ) -> list[ShadowRow]:  # fmt: skip
    """The shadow's price rows for the listings the champion priced (the usable ones: finite and positive)."""
    prices = predict_prices(model.model, listings)
    usable = np.isfinite(prices).all(axis=1) & (prices[:, 0] > 0)
    priced = zip(rows, np.round(prices, 2).tolist(), usable, strict=True)
    return [ShadowRow(row.source, row.listing_id, model.version, champion, fair, low, high, row.event_time)
            for row, (fair, low, high), ok in priced if ok]  # fmt: skip


class Shadow:
    """The version scoring in shadow in this worker, if any (``training.shadow``): loaded off the hot path,
    asked about again on every shadow update and registry poll. A shadow that cannot load or raises is
    dropped — this worker stops using that version and records why (``drops``, stored with the batch) —
    and the champion's path goes on untouched."""

    def __init__(self, settings: Settings, metrics: ShadowMetrics | None = None, database_url: str | None = None
                 ) -> None:  # fmt: skip
        self.settings, self.database_url = settings, database_url
        self.metrics: ShadowMetrics = metrics or Uncounted()
        self.model: LoadedModel | None = None
        self.dropped: set[int] = set()
        self.drops: list[ShadowDrop] = []
        self.lock = asyncio.Lock()
        self.thread = concurrent.futures.ThreadPoolExecutor(1, "shadow")  # XGBoost lets go of the GIL as it predicts

    async def refresh(self, why: str) -> None:
        """Load the recorded shadow if it is new to this worker; let go of one that has ended."""
        async with self.lock:
            loop = asyncio.get_running_loop()
            try:
                recorded = await loop.run_in_executor(None, active_shadow, self.settings, self.database_url)
            except PriceMyRideError as exc:
                log.warning("shadow not checked (%s); keeping %s", exc, self.model and self.model.version)
                return
            version = recorded.version if recorded else None
            if version == (self.model and self.model.version):
                return
            self.model = None
            if version is not None and version not in self.dropped:
                await self.load(version, why)
            self.metrics.shadow(version if self.model else None)

    async def load(self, version: int, why: str) -> None:
        log.info("loading version %d to score in shadow (%s)", version, why)
        try:
            loop = asyncio.get_running_loop()
            loaded = await loop.run_in_executor(None, load_shadow, self.settings, version, self.database_url)
        except Exception as exc:  # noqa: BLE001 - a shadow never stops a worker
            self.drop(version, f"could not load: {type(exc).__name__}: {exc}")
            return
        self.model = single_threaded(loaded)
        freeze_heap(collect=False)
        log.info("version %d is loaded; it scores in shadow from the next batch on", version)

    def drop(self, version: int, reason: str) -> None:
        log.error("dropping shadow version %d: %s", version, reason)
        self.dropped.add(version)
        self.drops.append(ShadowDrop(version, WORKER_ID, reason[:500]))
        if self.model is not None and self.model.version == version:
            self.model = None
        self.metrics.shadow(None, dropped=True)

    def start(self, champion: int, rows: Sequence[PredictionRow], listings: Sequence[Listing]) -> Pending | None:
        """Start pricing the listings the champion priced (``rows[i]`` is ``listings[i]``) on the shadow's own
        thread, while the event loop stores the champion's rows; none without a shadow. One vectorised call."""
        model = self.model
        if model is None or model.version == champion or not rows:
            return None
        future = self.thread.submit(shadow_rows, model, champion, rows, listings)
        return Pending(model.version, len(listings), asyncio.wrap_future(future))

    async def outcome(self, pending: Pending | None) -> tuple[list[ShadowRow], list[ShadowDrop]]:
        """The shadow's prices of a batch (none if it raised: it is dropped) and the drops to store with them."""
        rows: list[ShadowRow] = []
        if pending is not None:
            try:
                rows = await pending.rows
            except Exception as exc:  # noqa: BLE001 - see drop
                self.drop(pending.version, f"raised on a batch of {pending.size}: {type(exc).__name__}: {exc}"[:500])
            else:  # the version in use now: a refresh may have ended this one while the batch was priced
                self.metrics.shadow(self.model.version if self.model else None, rows=len(rows))
        return rows, self.take_drops()

    def pending(self, champion: int, rows: Sequence[PredictionRow], listings: Sequence[Listing]
                ) -> asyncio.Task[tuple[list[ShadowRow], list[ShadowDrop]]] | None:  # fmt: skip
        """What the batch's transaction stores for the shadow, as a task (started now, on the shadow's thread;
        a task, so a retried transaction awaits the same outcome again); none without prices or drops to store."""
        started = self.start(champion, rows, listings)
        if started is None and not self.drops:
            return None
        return asyncio.ensure_future(self.outcome(started))

    def take_drops(self) -> list[ShadowDrop]:
        drops, self.drops = self.drops, []
        return drops


async def follow_model_updates(settings: Settings, champion: Champion, shadow: Shadow | None = None) -> None:
    """Every worker reads every ``model-updates`` event (no consumer group), from the moment it starts. An update
    of the shadow goes to ``shadow`` (a process without one, the API, ignores it)."""
    consumer = AIOKafkaConsumer(
        settings.model_updates_topic,
        **aiokafka_options(settings),
        group_id=None,  # no group: every partition, in every worker
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async for message in consumer:
            try:
                update = ModelUpdate.model_validate_json(message.value or b"")
            except ValidationError as exc:
                log.error("ignoring malformed model update at offset %d: %s", message.offset, exc)
                continue
            if update.model and update.model != settings.model_name:
                log.info("ignoring an update of model %s (this worker serves %s)", update.model, settings.model_name)
                continue
            if update.alias == settings.shadow_alias:
                if shadow is not None:
                    await shadow.refresh(f"model-updates: {update.reason}")
                continue
            await champion.offer(update.version, f"model-updates: {update.reason}")
    finally:
        await consumer.stop()


async def poll_registry(settings: Settings, champion: Champion, shadow: Shadow | None = None) -> None:
    """The fallback when an update event is missed: compare the champion alias with the model in use (and the
    recorded shadow with the one in use)."""
    loop = asyncio.get_running_loop()
    if shadow is not None:
        await shadow.refresh("registry poll")
    try:
        version = await loop.run_in_executor(None, lambda: champion_version(configure(settings), settings))
    except Exception as exc:  # noqa: BLE001 - the registry may be down; scoring goes on
        log.warning("registry poll failed (%s); keeping the current model", exc)
        return
    await champion.offer(version, "registry poll")

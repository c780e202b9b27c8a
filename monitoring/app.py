"""The drift worker: its ``monitor_predictions`` task reads ``price-predictions`` in tumbling windows.

Run it with ``python -m monitoring worker -l info``. Each window is computed off the event loop (a
thread runs Evidently), written to Postgres (``drift_windows`` + ``drift_features``), and when the
policy fires for a new drift episode one ``RetrainRequest`` goes to ``retrain-requests``.

The same process keeps the analysts' market rollups (``monitoring.market``) every
``PRICEMYRIDE_MARKET_REFRESH_S``, on a thread, from the stored predictions.

Predictions are read with ``isolation_level=read_committed`` (only what the workers' transactions
committed), by an aiokafka consumer in the monitor's group: faust's own consumer reads committed records
only when the app itself runs exactly-once transactions. A window's offsets are committed once it is recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

import faust
import mlflow
import pandas as pd
import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from faust.app.base import BootStrategy
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from monitoring import metrics
from monitoring.drift import Episode, WindowResult, compute_window
from monitoring.market import refresh as refresh_market
from pricemyride.events import Prediction, RetrainRequest
from pricemyride.faustapp import faust_app
from pricemyride.kafka import aiokafka_options
from pricemyride.ops import Health, serve_or_exit
from pricemyride.policy import DriftPolicy
from pricemyride.process import exit_now
from pricemyride.retry import every
from pricemyride.settings import Settings
from pricemyride.topics import METADATA_MAX_AGE_MS, SiteTopics
from training.contracts import METRIC_MAE, REFERENCE_ARTIFACT
from training.registry import champion_version, configure

log = logging.getLogger(__name__)
EXIT_UNRECORDED_WINDOW = 75  # EX_TEMPFAIL: restart me

INSERT_WINDOW = """
INSERT INTO drift_windows (window_start, window_end, model_version, rows, labelled_rows, drift_share,
    prediction_drift, price_drift, mae, mape, mae_ratio, coverage, fired, retrain_requested)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
"""


@dataclass(frozen=True)
class Reference:
    """The champion's reference sample and its test MAE, loaded from its MLflow run."""

    version: int
    frame: pd.DataFrame
    mae: float | None


def load_reference(settings: Settings) -> Reference:
    client = configure(settings)
    version = champion_version(client, settings)
    run_id = client.get_model_version(settings.model_name, str(version)).run_id
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT)
    mae = client.get_run(str(run_id)).data.metrics.get(METRIC_MAE)
    return Reference(version, pd.read_parquet(Path(path)), mae)


def window_frame(predictions: Sequence[Prediction]) -> pd.DataFrame:
    """One row per prediction: the listing's fields, the model's prices and the asking price."""
    rows = []
    for p in predictions:
        row = p.listing.model_dump(mode="json")
        row.update(predicted_price=p.predicted_price, price_low=p.price_low, price_high=p.price_high,
                   price=p.asking_price, model_version=p.model_version)  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def store_window(settings: Settings, predictions: Sequence[Prediction], version: int, result: WindowResult,
                 request: RetrainRequest | None) -> int:  # fmt: skip
    times = [p.event_time for p in predictions]
    with psycopg.connect(settings.database_url.get_secret_value()) as conn, conn.transaction():
        row = conn.execute(INSERT_WINDOW, [
            min(times), max(times), version, result.rows, result.labelled_rows, result.drift_share,
            result.prediction_drift, result.price_drift, result.mae, result.mape, result.mae_ratio,
            result.coverage, result.fired, request is not None,
        ]).fetchone()  # fmt: skip
        window_id = int(row[0]) if row else 0
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO drift_features (window_id, feature, score, drifted) VALUES (%s, %s, %s, %s)",
                [(window_id, f, s, f in result.drifted_features) for f, s in result.feature_scores.items()],
            )
        if request is not None:
            conn.execute(
                "INSERT INTO retrain_requests (request_id, requested_at, reason, champion_version, window_id, metrics)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [request.request_id, request.requested_at, request.reason, request.champion_version, window_id,
                 Jsonb(request.metrics)],
            )  # fmt: skip
    return window_id


def last_request_time(settings: Settings) -> datetime | None:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        row = conn.execute("SELECT max(requested_at) FROM retrain_requests").fetchone()
    return row[0] if row else None


Record: TypeAlias = ConsumerRecord[bytes, bytes]


def parse_predictions(messages: Sequence[Record]) -> list[Prediction]:
    """The window's predictions; a record that is not one (an older format, or hostile bytes on the topic) is
    skipped, logged and counted — whatever it holds, it never stops the monitor."""
    parsed = []
    for message in messages:
        try:
            parsed.append(Prediction.model_validate_json(message.value or b""))
        except Exception as exc:  # noqa: BLE001 - one record's bytes must never stop the monitor
            why = str(exc).splitlines()[0][:200] if isinstance(exc, ValidationError) else type(exc).__name__
            log.warning("skipping %s[%d]@%d: not a Prediction (%s)", message.topic, message.partition,
                        message.offset, why)  # fmt: skip
            metrics.skipped()
    return parsed


async def next_window(consumer: AIOKafkaConsumer, events: int, seconds: float) -> list[Record]:
    """Up to ``events`` records: as many as arrive within ``seconds`` of the first (empty after 1 s idle)."""
    loop = asyncio.get_running_loop()
    window: list[Record] = []
    deadline = loop.time() + 1.0
    while len(window) < events and loop.time() < deadline:
        wait_ms = max(1, int((deadline - loop.time()) * 1000))
        fetched = await consumer.getmany(timeout_ms=wait_ms, max_records=events - len(window))
        if fetched and not window:
            deadline = loop.time() + seconds
        window.extend(m for records in fetched.values() for m in records)
    return window


def window_offsets(window: Sequence[Record]) -> dict[TopicPartition, int]:
    """One past the last offset per partition: what to commit once the window is recorded."""
    offsets: dict[TopicPartition, int] = {}
    for m in window:
        tp = TopicPartition(m.topic, m.partition)
        offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
    return offsets


def predictions_consumer(settings: Settings) -> AIOKafkaConsumer:
    """Every predictions topic (the operator's and each site's), found by pattern; new sites within a minute."""
    consumer = AIOKafkaConsumer(
        **aiokafka_options(settings),
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
        group_id=f"{settings.consumer_group}-monitor",  # the group faust's agent used: same committed offsets
        isolation_level="read_committed",  # only predictions whose worker transaction committed
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer.subscribe(pattern=SiteTopics.of(settings).predictions_pattern())
    return consumer


def exit_without_ack(exc: BaseException) -> NoReturn:
    """As in the scoring worker: never commit a window that was not recorded."""
    exit_now(f"drift window not recorded ({exc!r}); exiting so it is redelivered", EXIT_UNRECORDED_WINDOW)


@dataclass
class DriftMonitor:
    """The drift worker's state — the champion's reference and the drift episode — and its steps."""

    settings: Settings
    policy: DriftPolicy
    requests: Any  # the faust topic retrain requests go to
    episode: Episode = field(init=False)
    reference: Reference | None = None
    version: int | None = None
    watching: bool = False

    def __post_init__(self) -> None:
        self.episode = Episode(self.policy)

    async def watch(self, consumer: AIOKafkaConsumer) -> None:
        """Close a window every ``window_events`` predictions or ``window_seconds`` after its first one,
        whichever comes first; commit its offsets once it is recorded."""
        self.episode.last_request = await asyncio.get_running_loop().run_in_executor(
            None, last_request_time, self.settings
        )
        self.watching = True
        while True:
            window = await next_window(consumer, self.policy.window_events, self.policy.window_seconds)
            if not window:
                continue
            try:
                batch = parse_predictions(window)
                if batch:
                    await self.close_window(batch)
                await consumer.commit(window_offsets(window))
            except CommitFailedError as exc:  # a rebalance moved the partitions on: the window is recorded
                log.warning("window recorded, its offsets not committed (%s); it may be judged again", exc)
            except BaseException as exc:  # noqa: BLE001 - see exit_without_ack
                exit_without_ack(exc)

    async def current_reference(self) -> Reference:
        """The champion's reference, loaded again when the champion changed (which starts a new episode)."""
        loop = asyncio.get_running_loop()
        current = await loop.run_in_executor(None, lambda: champion_version(configure(self.settings), self.settings))
        if self.reference is None or self.reference.version != current:
            self.reference = await loop.run_in_executor(None, load_reference, self.settings)
            log.info("drift reference: champion version %d (test MAE %s)", current, self.reference.mae)
        if self.version != self.reference.version:
            self.version, self.episode.consecutive = self.reference.version, 0
        return self.reference

    async def close_window(self, received: list[Prediction]) -> None:
        ref = await self.current_reference()
        batch, result = await self.judge(ref, received)
        if result is None:
            return
        request = self.request_for(ref, batch, result)
        loop = asyncio.get_running_loop()
        window_id = await loop.run_in_executor(None, store_window, self.settings, batch, ref.version, result, request)
        metrics.window(result, ref.version, requested=request is not None)
        mae = None if result.mae is None else round(result.mae)
        log.info("window %d: %d rows, drift share %.2f, MAE %s, fired %s", window_id, result.rows,
                 result.drift_share, mae, result.fired or "-")  # fmt: skip
        if request is not None:
            await (await self.requests.send(key=str(ref.version).encode(), value=request.model_dump_json().encode()))
            log.warning("retrain requested (%s) for champion version %d", request.reason, ref.version)

    async def judge(self, ref: Reference, received: list[Prediction]) -> tuple[list[Prediction], WindowResult | None]:
        """The champion judged on its own predictions only (a window around a swap holds older ones too)."""
        batch = [p for p in received if p.model_version == ref.version] or received
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, judged, self.policy, ref, batch)
        if result is not None and batch is received and any(p.model_version != ref.version for p in received):
            result = replace(result, fired=[])  # no prediction by the champion in this window: record only
        return batch, result

    def request_for(self, ref: Reference, batch: list[Prediction], result: WindowResult) -> RetrainRequest | None:
        """A retrain request when this window opens a new drift episode (the policy's cadence), else None."""
        now = datetime.now(UTC)
        if not self.episode.observe(result.fired, now):
            return None
        return RetrainRequest(
            requested_at=now, reason=", ".join(result.fired), champion_version=ref.version,
            window_start=min(p.event_time for p in batch), window_end=max(p.event_time for p in batch),
            metrics={k: v for k, v in result.as_dict().items() if k != "feature_scores"},
        )  # fmt: skip


def judged(policy: DriftPolicy, ref: Reference, batch: list[Prediction]) -> WindowResult | None:
    """The window's drift, or None for a window whose rows cannot be computed (whatever the predictions hold):
    it is logged, counted and skipped, never a stopped monitor."""
    try:
        return compute_window(policy, ref.frame, window_frame(batch), ref.mae)
    except Exception:  # the window's contents must never stop the monitor
        log.exception("drift window of %d predictions could not be computed; skipped", len(batch))
        metrics.skipped(len(batch))
        return None


def fold_market(settings: Settings) -> None:
    """One market rollup refresh (``monitoring.market``) on a connection of its own; a failure is counted and
    raised (``every`` logs it, and the next refresh folds in what this one missed)."""
    try:
        with psycopg.connect(settings.database_url.get_secret_value()) as conn:
            done = refresh_market(conn)
    except Exception:
        metrics.market_failed()
        raise
    if done is not None:
        metrics.market(done.seconds)
        if done.listings:
            log.info("market: %d valuation(s) folded in, %d period(s) recomputed in %.1f s", done.listings,
                     done.periods, done.seconds)  # fmt: skip


def create_monitor_app(settings: Settings) -> faust.App:
    """Build the drift worker's faust app from settings (the policy is ``settings.drift``); wire its tasks."""
    app = faust_app(settings, "monitor", value_serializer="raw", key_serializer="raw", producer_acks=-1,
                    topic_disable_leader=True)  # fmt: skip
    app.boot_strategy = BootStrategy(app, enable_kafka_consumer=False)  # predictions: predictions_consumer
    requests = app.topic(settings.retrain_topic, value_serializer="raw", key_serializer="raw")
    monitor = DriftMonitor(settings, settings.drift, requests)
    health = Health({"watching predictions": lambda: monitor.watching})

    @app.task
    async def serve_metrics() -> None:
        serve_or_exit(settings, "monitor", health)

    @app.task
    async def refresh_market_rollups() -> None:  # at start, then every PRICEMYRIDE_MARKET_REFRESH_S after each
        await every(settings.market_refresh_s, lambda: fold_market(settings), "refreshing the market rollups")

    @app.task
    async def monitor_predictions() -> None:
        consumer = predictions_consumer(settings)
        await consumer.start()
        try:
            await monitor.watch(consumer)
        finally:
            await consumer.stop()

    return app

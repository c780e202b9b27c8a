"""The drift worker: ``monitor_predictions`` reads ``price-predictions`` in tumbling windows.

Run it with ``python -m monitoring worker -l info``. Each window is computed off the event loop (a
thread runs Evidently), written to Postgres (``drift_windows`` + ``drift_features``), and when the
policy fires for a new drift episode one ``RetrainRequest`` goes to ``retrain-requests``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, cast

import faust
import mlflow
import pandas as pd
import psycopg
from faust.types import EventT
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from monitoring import metrics
from monitoring.drift import Episode, WindowResult, compute_window
from pricemyride.events import Prediction, RetrainRequest
from pricemyride.faustapp import faust_app
from pricemyride.ops import Health, serve_or_exit
from pricemyride.policy import DriftPolicy
from pricemyride.process import exit_now
from pricemyride.settings import Settings
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


def parse_predictions(events: Sequence[EventT]) -> list[Prediction]:
    """The window's predictions; one that does not parse (an older event format) is skipped and logged."""
    parsed = []
    for event in events:
        message = event.message
        try:
            parsed.append(Prediction.model_validate_json(message.value or b""))
        except ValidationError as exc:
            log.warning("skipping %s[%d]@%d: not a Prediction (%s)", message.topic, message.partition,
                        message.offset, str(exc).splitlines()[0])  # fmt: skip
    return parsed


def exit_without_ack(exc: BaseException) -> NoReturn:
    """As in the scoring worker: never let faust ack a window that was not recorded."""
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

    async def watch(self, stream: faust.StreamT[bytes]) -> None:
        """Close a window every ``window_events`` predictions or ``window_seconds``, whichever comes first."""
        self.episode.last_request = await asyncio.get_running_loop().run_in_executor(
            None, last_request_time, self.settings
        )
        self.watching = True
        async for events in cast(faust.Stream[bytes], stream).take_events(
            self.policy.window_events, within=self.policy.window_seconds
        ):
            try:
                batch = parse_predictions(events)
                if batch:
                    await self.close_window(batch)
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

    async def judge(self, ref: Reference, received: list[Prediction]) -> tuple[list[Prediction], WindowResult]:
        """The champion judged on its own predictions only (a window around a swap holds older ones too)."""
        batch = [p for p in received if p.model_version == ref.version] or received
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, compute_window, self.policy, ref.frame, window_frame(batch), ref.mae)
        if batch is received and any(p.model_version != ref.version for p in received):
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


def create_monitor_app(settings: Settings) -> faust.App:
    """Build the drift worker's faust app from settings (the policy is ``settings.drift``); wire its agent."""
    app = faust_app(settings, "monitor", value_serializer="raw", key_serializer="raw",
                    consumer_auto_offset_reset="earliest", producer_acks=-1, topic_disable_leader=True,
                    stream_wait_empty=False)  # fmt: skip
    predictions = app.topic(settings.predictions_topic, value_serializer="raw", key_serializer="raw")
    requests = app.topic(settings.retrain_topic, value_serializer="raw", key_serializer="raw")
    monitor = DriftMonitor(settings, settings.drift, requests)
    health = Health({"watching predictions": lambda: monitor.watching})

    @app.task
    async def serve_metrics() -> None:
        serve_or_exit(settings, "monitor", health)

    @app.agent(predictions, name="monitor_predictions", concurrency=1)
    async def monitor_predictions(stream: faust.StreamT[bytes]) -> None:
        await monitor.watch(stream)

    return app

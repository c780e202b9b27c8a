"""`pricemyride retrain-listener`: turn retrain requests into Prefect flow runs, and run the live gate.

A kafka-python consumer of ``retrain-requests``. For each request it runs the ``retrain`` flow on the
labelled listings stored since the champion was trained (cleaned by the same rules) together with the
champion's own training files; a promotion publishes a ``ModelUpdate`` on ``model-updates``
(``training.promotion.promote``); a challenger that passes over a champion scores in shadow first, and a
thread of the listener looks at it every ``PRICEMYRIDE_SHADOW_CHECK_S`` (flow runs or not): the live gate
(``training.live_gate``) promotes it, rejects it, or rolls a worse new champion back.
A failed flow run is retried with backoff; after the last try the failure is recorded in
``model_events`` and logged — never silently dropped. The offset is committed only after that.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import psycopg
from kafka import KafkaConsumer
from pydantic import ValidationError

from pricemyride.events import RetrainRequest
from pricemyride.kafka import kafka_python_options
from pricemyride.ops import Health, serve_ops
from pricemyride.settings import Settings
from retrainer import metrics
from training import live_gate
from training.contracts import TAG_TRAINING_FILES
from training.gate import GateDecision
from training.promotion import EventKind, record_event
from training.registry import champion_version, configure
from training.shadow import Role, active_shadow

T = TypeVar("T")
log = logging.getLogger(__name__)
BACKOFF_S = (5.0, 20.0, 60.0)
PREFECT_WARM = threading.Event()  # clear while ``warm_prefect`` starts Prefect's temporary server
PREFECT_WARM.set()
PREFECT_WARM_WAIT_S = 120.0


def warm_prefect(settings: Settings) -> None:
    """In-process flow runs need a Prefect API. With none configured, Prefect starts a temporary server at the
    first flow run, which made the first retrain after a drift wait ~20 s in demo-drift; started here, when the
    listener starts, the wait is over before a drift is. A deployment (production) needs none."""
    try:
        from prefect.settings import PREFECT_API_URL

        if not settings.retrain_deployment and not PREFECT_API_URL.value():
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:  # starts the temporary server, kept for the process
                client.hello()
            log.info("prefect: temporary server ready for in-process flow runs")
    except Exception:  # the first flow run starts it then, or says why it cannot
        log.exception("prefect: temporary server not started ahead; the first flow run will start it")
    finally:
        PREFECT_WARM.set()


def retrain_inputs(settings: Settings) -> tuple[list[str], datetime | None]:
    """The champion's training files that still exist, and when it was trained."""
    client = configure(settings)
    version = champion_version(client, settings)
    run = client.get_run(str(client.get_model_version(settings.model_name, str(version)).run_id))
    files = [f for f in json.loads(run.data.tags.get(TAG_TRAINING_FILES, "[]")) if Path(f).is_file()]
    return files, datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC)


def run_flow(settings: Settings, request: RetrainRequest) -> GateDecision:
    """Run the retrain flow for ``request``: in this process, or on the Prefect deployment when one is set."""
    files, since = retrain_inputs(settings)
    log.info("retraining for request %s (%s): files %s, stored since %s", request.request_id, request.reason,
             files, since)  # fmt: skip
    parameters = {"data": files, "since": since, "margin": settings.promotion_margin,
                  "request_id": str(request.request_id)}  # fmt: skip
    if settings.retrain_deployment:
        return run_deployed(settings, parameters)
    PREFECT_WARM.wait(PREFECT_WARM_WAIT_S)  # one temporary server: the warm-up's, not a second of the run's own
    from training.flow import retrain

    return retrain(data=files, since=since, margin=settings.promotion_margin, request_id=str(request.request_id))


def run_deployed(settings: Settings, parameters: dict[str, Any]) -> GateDecision:
    """One flow run of the deployment (the request id is its idempotency key); its decision is read back
    from ``model_events``, where the flow recorded it."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        settings.retrain_deployment, parameters=parameters, idempotency_key=parameters["request_id"],
        timeout=settings.retrain_timeout_s, poll_interval=2, as_subflow=False,
    )  # fmt: skip
    if not isinstance(flow_run, FlowRun):  # the sync call returns the run itself, never a coroutine
        raise TypeError(f"run_deployment: expected a FlowRun, got {type(flow_run).__name__}")
    state = flow_run.state
    if state is None or not state.is_completed():
        raise RuntimeError(f"flow run {flow_run.name} ({flow_run.id}): expected Completed, got "
                           f"{state.name if state else 'no state'}: {state.message if state else ''}")  # fmt: skip
    return recorded_decision(settings, parameters["request_id"])


def recorded_decision(settings: Settings, request_id: str) -> GateDecision:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        row = conn.execute(
            "SELECT metrics, kind FROM model_events WHERE metrics->>'request_id' = %s "
            "AND kind IN ('promoted', 'rejected', 'shadowed') ORDER BY at DESC LIMIT 1", [request_id],
        ).fetchone()  # fmt: skip
    if row is None:
        raise RuntimeError(f"request {request_id}: the flow run completed but recorded no decision in model_events")
    return replace(GateDecision.from_record(dict(row[0])), shadowed=row[1] == "shadowed")


def with_retries(attempt: Callable[[], T], backoff: Sequence[float]) -> T:
    """Call ``attempt``; on failure wait and try again, once per backoff step; re-raise the last error."""
    for wait in [*backoff, None]:
        try:
            return attempt()
        except Exception as exc:
            if wait is None:
                raise
            log.exception("retrain flow failed (%s); retrying in %.0f s", exc, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def record_failure(settings: Settings, request: RetrainRequest, error: BaseException) -> None:
    record_event(settings, EventKind.FAILED, request.champion_version, request.champion_version,
                 f"retrain failed: {error!r}", {"request_id": str(request.request_id)})  # fmt: skip


def stale(settings: Settings, request: RetrainRequest) -> str | None:
    """Why ``request`` needs no retrain now: the champion it was about has been replaced, or a challenger for
    that champion already scores in shadow (the live gate is answering this drift)."""
    current = champion_version(configure(settings), settings)
    if current != request.champion_version:
        return f"it was about version {request.champion_version}, the champion is now {current}"
    shadow = active_shadow(settings)
    if shadow is not None and shadow.role is Role.CHALLENGER and shadow.champion == current:
        return f"version {shadow.version} already scores in shadow as the challenger to version {current}"
    return None


def handle(settings: Settings, raw: bytes, backoff: Sequence[float] = BACKOFF_S) -> GateDecision | None:
    """One request: run the flow (with retries); the gate's decision, or None when nothing was run."""
    metrics.RECEIVED.inc()
    try:
        request = RetrainRequest.model_validate_json(raw)
    except ValidationError as exc:
        log.error("ignoring malformed retrain request: %s", exc)
        metrics.handled("skipped")
        return None
    if (why := stale(settings, request)) is not None:
        log.info("skipping request %s: %s", request.request_id, why)
        metrics.handled("skipped")
        return None
    try:
        with metrics.RUN_SECONDS.time():
            decision = with_retries(lambda: run_flow(settings, request), backoff)
    except Exception as exc:  # noqa: BLE001 - recorded and logged, then the request is done with
        log.error("retrain request %s failed after %d tries: %r", request.request_id, len(backoff) + 1, exc)
        record_failure(settings, request, exc)
        metrics.handled("failed")
        return None
    metrics.handled("shadowed" if decision.shadowed else "promoted" if decision.promote else "rejected")
    if decision.promote:  # the flow has set the alias and published the ModelUpdate
        log.warning("request %s: version %d %s", request.request_id, decision.challenger,
                    "scores in shadow until the live gate decides" if decision.shadowed else "promoted")  # fmt: skip
    return decision


def watch_shadows(settings: Settings, stop: threading.Event) -> None:
    """The live gate's own thread: a look every ``PRICEMYRIDE_SHADOW_CHECK_S``, also while a flow runs."""
    while not stop.wait(settings.shadow.check_s):
        check_shadow(settings)


def check_shadow(settings: Settings) -> None:
    """One look at the running shadow: its figures to the metrics, and the live gate's decision when due.
    A failure is logged and tried again at the next look (it never stops the listener)."""
    try:
        looked = live_gate.check(settings)
    except Exception as exc:  # noqa: BLE001 - the registry or database may be away; the next look retries
        log.warning("live gate check failed (%s: %s); trying again in %.0f s", type(exc).__name__, exc,
                    settings.shadow.check_s)  # fmt: skip
        return
    metrics.shadow_seen(looked)
    if looked is not None and looked.outcome is not None:
        log.warning("live gate: version %d (%s) → %s", looked.shadow.version, looked.shadow.role.value, looked.outcome)


def exit_on_sigterm() -> None:
    """SIGTERM leaves through Python (``SystemExit``), so ``atexit`` runs: Prefect stops the temporary server
    it started for an in-process flow run (a plain SIGTERM left it running, ~240 MB)."""

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


def retrain_consumer(settings: Settings) -> KafkaConsumer:
    return KafkaConsumer(
        settings.retrain_topic, **kafka_python_options(settings),
        group_id=f"{settings.consumer_group}-retrainer", enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=1, max_poll_interval_ms=3_600_000,
    )  # fmt: skip


def listen(settings: Settings, max_requests: int | None = None) -> int:
    """Consume retrain requests until stopped (or ``max_requests`` were handled); return how many.

    Ready (``/readyz``) once the group has given this listener the topic's partition."""
    exit_on_sigterm()
    held = [0]  # partitions held after the last poll, read by the readiness check
    serve_ops(settings, "retrain-listener", Health({"retrain-requests assigned": lambda: held[0] > 0}))
    metrics.ALERT_AFTER.set(settings.shadow.alert_s)
    consumer, handled, stop = retrain_consumer(settings), 0, threading.Event()
    threading.Thread(target=watch_shadows, args=(settings, stop), name="live-gate", daemon=True).start()
    PREFECT_WARM.clear()
    threading.Thread(target=warm_prefect, args=(settings,), name="prefect-warm-up", daemon=True).start()
    try:
        while max_requests is None or handled < max_requests:
            polled = consumer.poll(timeout_ms=1000)
            held[0] = len(consumer.assignment())
            for message in (m for records in polled.values() for m in records):
                handle(settings, message.value)
                consumer.commit()
                handled += 1
    finally:
        stop.set()
        consumer.close()
    return handled

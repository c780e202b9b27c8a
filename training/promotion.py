"""One place that promotes: set ``@champion``, keep ``@previous`` for a rollback, record the event, tell the workers.

Used by the retrain flow's gate, ``pricemyride train`` and ``pricemyride promote``. The registry alias is the
truth workers follow: the ``model_events`` row is the audit trail (required), the ``ModelUpdate`` on
``model-updates`` makes workers swap at once. If Kafka does not take the update, workers still pick the new
champion up at their next registry poll (``PRICEMYRIDE_REGISTRY_POLL_S``), and a warning says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from kafka import KafkaProducer
from kafka.errors import KafkaError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from psycopg.types.json import Jsonb

from pricemyride.errors import ModelNotFound
from pricemyride.events import ModelUpdate
from pricemyride.kafka import kafka_python_options
from pricemyride.settings import Settings, redacted
from pricemyride.storage import ModelEventKind as EventKind
from training.contracts import VERSION_TAG_GATE, VERSION_TAG_GATE_REASON
from training.registry import configure, load_version

log = logging.getLogger(__name__)
PREVIOUS_ALIAS = "previous"
PUBLISH_TIMEOUT_S = 10.0


INSERT_EVENT = "INSERT INTO model_events (kind, version, champion, reason, metrics) VALUES (%s, %s, %s, %s, %s)"


def record_event(
    settings: Settings,
    kind: EventKind,
    version: int,
    champion: int | None,
    reason: str,
    metrics: dict[str, Any],
    then: Callable[[], None] = lambda: None,
) -> None:
    """Insert the ``model_events`` row; ``then`` runs inside the transaction, so if it fails no row is kept."""
    with psycopg.connect(settings.database_url.get_secret_value(), connect_timeout=10) as conn:
        conn.execute(
            INSERT_EVENT, [kind.value, version, champion, reason, Jsonb(metrics | {"model": settings.model_name})]
        )
        then()


def alias_version(client: MlflowClient, settings: Settings, alias: str) -> int | None:
    try:
        return int(client.get_model_version_by_alias(settings.model_name, alias).version)
    except MlflowException:
        return None


def require_version(client: MlflowClient, settings: Settings, version: int) -> None:
    try:
        client.get_model_version(settings.model_name, str(version))
    except MlflowException:
        raise ModelNotFound(
            f"{settings.model_name}: expected a registered version {version}, found none in "
            f"{redacted(settings.tracking_uri)}"
        ) from None


def publish_update(settings: Settings, update: ModelUpdate) -> bool:
    """Send the update to ``model-updates``; False (and a warning) when Kafka did not take it in time."""
    try:
        producer = KafkaProducer(
            **kafka_python_options(settings),
            acks="all",
            enable_idempotence=True,
            max_block_ms=int(PUBLISH_TIMEOUT_S * 1000),
        )
        try:
            producer.send(settings.model_updates_topic, key=str(update.version).encode(),
                          value=update.model_dump_json().encode()).get(timeout=PUBLISH_TIMEOUT_S)  # fmt: skip
        finally:
            producer.close(timeout=2)
    except KafkaError as exc:
        log.warning("version %d is champion, but Kafka did not take the update (%s): workers switch at their next "
                    "registry poll, within %.0f s", update.version, exc, settings.registry_poll_s)  # fmt: skip
        return False
    return True


def move_aliases(client: MlflowClient, settings: Settings, version: int, before: int | None, reason: str) -> None:
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, str(version))
    if before is not None and before != version:
        client.set_registered_model_alias(settings.model_name, PREVIOUS_ALIAS, str(before))
    if alias_version(client, settings, settings.challenger_alias) == version:
        client.delete_registered_model_alias(settings.model_name, settings.challenger_alias)
    client.set_model_version_tag(settings.model_name, str(version), VERSION_TAG_GATE, EventKind.PROMOTED.value)
    client.set_model_version_tag(settings.model_name, str(version), VERSION_TAG_GATE_REASON, reason)


def model_update(settings: Settings, version: int, reason: str) -> ModelUpdate:
    return ModelUpdate(model=settings.model_name, version=version, alias=settings.champion_alias,
                       promoted_at=datetime.now(UTC), reason=reason)  # fmt: skip


def promote(
    settings: Settings, version: int, reason: str, metrics: dict[str, Any] | None = None, verify: bool = False
) -> ModelUpdate:
    """Make ``version`` the champion (the one before it becomes ``@previous``), record it and announce it.

    ``verify`` loads the version first (a version workers cannot load is refused). The aliases move inside
    the ``model_events`` transaction: when either fails, neither is kept."""
    client = configure(settings)
    require_version(client, settings, version)
    if verify:
        load_version(client, settings, version)
    before = alias_version(client, settings, settings.champion_alias)
    record_event(settings, EventKind.PROMOTED, version, before, reason, metrics or {},
                 then=lambda: move_aliases(client, settings, version, before, reason))  # fmt: skip
    update = model_update(settings, version, reason)
    publish_update(settings, update)
    log.warning("version %d is now @%s (was %s): %s", version, settings.champion_alias, before, reason)
    return update


def reject(settings: Settings, version: int, champion: int | None, reason: str, metrics: dict[str, Any]) -> None:
    """Record that ``version`` stays a challenger, and why."""
    client = configure(settings)
    client.set_model_version_tag(settings.model_name, str(version), VERSION_TAG_GATE, EventKind.REJECTED.value)
    client.set_model_version_tag(settings.model_name, str(version), VERSION_TAG_GATE_REASON, reason)
    record_event(settings, EventKind.REJECTED, version, champion, reason, metrics)
    log.warning("version %d stays @%s: %s", version, settings.challenger_alias, reason)


def rollback(settings: Settings) -> ModelUpdate:
    """Promote the version behind ``@previous`` (the champion before the current one)."""
    client = configure(settings)
    previous = alias_version(client, settings, PREVIOUS_ALIAS)
    if previous is None:
        raise ModelNotFound(
            f"{settings.model_name}@{PREVIOUS_ALIAS}: expected the champion before the current one, found none "
            "(nothing was promoted over another version yet)"
        )
    return promote(settings, previous, f"rollback to version {previous}", verify=True)

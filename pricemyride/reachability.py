"""Is a service there? One quick look at Kafka, Postgres or an MLflow server before a command relies on it.

Each check speaks the service's own protocol (a Kafka bootstrap, a Postgres login, MLflow's /health), so a
server that accepts connections but never answers fails too, within ``TIMEOUT_S`` — a client library left
alone would retry for 30 s to minutes. It raises ``ServiceUnavailable`` naming the service, the address
(without credentials) and the setting that points at it; a connection string that does not parse is a
``ConfigError``. No message carries a password.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from typing import Final

import psycopg
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from psycopg.conninfo import conninfo_to_dict

from pricemyride.errors import ConfigError, ServiceUnavailable
from pricemyride.kafka import kafka_python_options
from pricemyride.settings import Settings, env_name, redacted

TIMEOUT_S: Final = 8.0


def check_kafka(settings: Settings, timeout_s: float = TIMEOUT_S) -> None:
    """A broker answers a bootstrap (metadata) request."""
    wait_ms = int(timeout_s * 1000)
    library_log = logging.getLogger("kafka")
    level, library_log.level = library_log.level, logging.CRITICAL  # its retries would log each refusal
    try:
        KafkaAdminClient(**kafka_python_options(settings), request_timeout_ms=wait_ms,
                         bootstrap_timeout_ms=wait_ms).close()  # fmt: skip
    except KafkaError as exc:
        raise ServiceUnavailable(
            f"Kafka: expected a broker answering at {settings.kafka_bootstrap}, got {type(exc).__name__} within "
            f"{timeout_s:.0f} s; start it (make up) or set {env_name('kafka_bootstrap')}"
        ) from None
    finally:
        library_log.setLevel(level)


def _scrubbed(text: str, secret: str | None) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "no answer"
    return first.replace(secret, "***") if secret else first


def check_postgres(settings: Settings, timeout_s: float = TIMEOUT_S) -> None:
    """The writer's database accepts a login."""
    url = settings.database_url.get_secret_value()
    try:
        password = str(conninfo_to_dict(url).get("password") or "") or None
    except psycopg.ProgrammingError:
        raise ConfigError(
            f"{env_name('database_url')}: expected a PostgreSQL URL or key=value string, got one that does not "
            "parse (not shown: it may hold a password)"
        ) from None
    try:
        psycopg.connect(url, connect_timeout=max(int(timeout_s), 2)).close()
    except psycopg.Error as exc:
        raise ServiceUnavailable(
            f"Postgres: expected a database answering at {redacted(url)}, got {_scrubbed(str(exc), password)[:200]}; "
            f"start it (make up) or set {env_name('database_url')}"
        ) from None


def check_mlflow(settings: Settings, timeout_s: float = TIMEOUT_S) -> None:
    """An MLflow tracking server answers /health (a local sqlite store needs no server)."""
    uri = settings.tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as answer:  # noqa: S310
            answer.read(64)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceUnavailable(
            f"MLflow: expected a tracking server answering at {redacted(uri)}, got {reason}; "
            f"start it or set {env_name('mlflow_tracking_uri')}"
        ) from None


def bound_mlflow_retries() -> None:
    """A one-shot command waits seconds, not minutes, for an MLflow server that stopped answering."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(TIMEOUT_S)))

"""Is a service there? One quick look at Kafka, Postgres or an MLflow server before a command relies on it.

Each check answers within ``TIMEOUT_S`` (a client library left alone would retry for 30 s to minutes) and
raises ``ServiceUnavailable`` naming the service, the address, and the setting that points at it. The
address is shown without credentials.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from typing import Final

import psycopg

from pricemyride.errors import ServiceUnavailable
from pricemyride.settings import Settings, env_name, redacted

TIMEOUT_S: Final = 10.0


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return (host, int(port)) if host and port.isdigit() else (address.strip(), default_port)


def check_kafka(settings: Settings, timeout_s: float = TIMEOUT_S) -> None:
    """Some bootstrap server accepts a connection."""
    servers = [s for s in settings.kafka_bootstrap.split(",") if s.strip()]
    for server in servers:
        try:
            socket.create_connection(_host_port(server, 9092), timeout=timeout_s / max(len(servers), 1)).close()
            return
        except OSError:
            continue
    raise ServiceUnavailable(
        f"Kafka: expected a broker answering at {settings.kafka_bootstrap}, got no answer within {timeout_s:.0f} s; "
        f"start it (make up) or set {env_name('kafka_bootstrap')}"
    )


def check_postgres(settings: Settings, timeout_s: float = TIMEOUT_S) -> None:
    """The writer's database accepts a login."""
    url = settings.database_url.get_secret_value()
    try:
        psycopg.connect(url, connect_timeout=max(int(timeout_s), 2)).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailable(
            f"Postgres: expected a database answering at {redacted(url)}, got {first[:200]}; "
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
        raise ServiceUnavailable(
            f"MLflow: expected a tracking server answering at {redacted(uri)}, got {exc}; "
            f"start it or set {env_name('mlflow_tracking_uri')}"
        ) from None


def bound_mlflow_retries() -> None:
    """A one-shot command waits seconds, not minutes, for an MLflow server that stopped answering."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(TIMEOUT_S)))

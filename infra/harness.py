"""What demos, chaos, benchmarks and tests share to run the system for real: isolated worlds (a database,
topics, consumer groups and a registry of their own), background processes, a real MLflow server, and
queries for the rows a world stored."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.services import Paths, log, pid_alive
from pricemyride.errors import ModelNotFound
from pricemyride.settings import Settings
from pricemyride.storage import ModelEventKind
from pricemyride.topics import read_topic
from training.promotion import record_event
from training.registry import champion_version, configure, last_promoted

ROOT = Path(__file__).resolve().parents[1]
WORKER_ARGS = ["-m", "stream_workers", "worker", "-l", "info"]  # a scoring worker, as spawn starts it


def drop_database(base: Settings, dbname: str) -> None:
    """Drop a world's database (its sessions too), through the base settings' server."""
    with psycopg.connect(base.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def world_env(base: Settings, name: str, folder: Path, **overrides: str) -> dict[str, str]:
    """Environment for an isolated world: a fresh database, its own topics, groups, registry and state."""
    dbname = f"pricemyride_{name.replace('-', '_')}"
    drop_database(base, dbname)
    with psycopg.connect(base.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))

    def url(secret: str) -> str:
        params = conninfo_to_dict(secret)
        params["dbname"] = dbname
        return make_conninfo("", **params)

    env = {
        "PRICEMYRIDE_DATABASE_URL": url(base.database_url.get_secret_value()),
        "PRICEMYRIDE_READER_DATABASE_URL": url(base.reader_database_url.get_secret_value()),
        "PRICEMYRIDE_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow' / 'mlflow.db'}",
        "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT": str(folder / "mlflow" / "artifacts"),
        "PRICEMYRIDE_CONSUMER_GROUP": f"pricemyride-{name}",
        "PRICEMYRIDE_STATE_DIR": str(folder / "state"),
        "PREFECT_HOME": str(folder / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env |= {  # the base's Kafka, so a world before this one that ran on another cluster leaves no trace
        "PRICEMYRIDE_KAFKA_BOOTSTRAP": base.kafka_bootstrap,
        "PRICEMYRIDE_KAFKA_BROKERS": str(base.kafka_brokers),
        "PRICEMYRIDE_LISTINGS_PARTITIONS": str(base.listings_partitions),
        "PRICEMYRIDE_PROCESSING_GUARANTEE": base.processing_guarantee,
    }
    topics = ("listings", "dlq", "predictions", "retrain", "model_updates")
    env |= {f"PRICEMYRIDE_{t.upper()}_TOPIC": f"{name}.{t.replace('_', '-')}" for t in topics}
    return env | overrides


def borrow_champion(settings: Settings) -> int | None:
    """A world with a database of its own that shares another world's registry: record the registry's champion
    as the gate's promotion in this database too, as one deployment's gate would have (workers load only a
    version ``model_events`` records). None when the registry has no champion yet."""
    try:
        version = champion_version(configure(settings), settings)
    except ModelNotFound:
        return None
    if last_promoted(settings) != version:
        record_event(settings, ModelEventKind.PROMOTED, version, None, "the shared registry's champion", {})
    return version


def spawn(name: str, args: list[str], paths: Paths, env: dict[str, str] | None = None) -> int:
    """Start ``args`` in the background (or leave the running one); return its PID."""
    running = pid_alive(paths.pid_file(name))
    if running:
        log(f"{name} already running (pid {running})")
        return running
    paths.logs.mkdir(parents=True, exist_ok=True)
    paths.run.mkdir(parents=True, exist_ok=True)
    with (paths.logs / f"{name}.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=os.environ | (env or {}),
        )
    paths.pid_file(name).write_text(str(proc.pid))
    return proc.pid


def rows(settings: Settings, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        return conn.execute(query, params).fetchall()


def topic_keys(settings: Settings, topic: str) -> list[str]:
    """The key of every message in ``topic``: the listing ids offered."""
    return [(m.key or b"").decode("utf-8", "replace") for m in read_topic(settings, topic, timeout_s=5)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(folder: Path, port: int, admin_password: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A real MLflow server on ``port``; with ``admin_password``, behind its basic-auth app configured as
    production's (deploy/mlflow/basic_auth.ini, its user store in ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination",
           str(folder / "artifacts"), "--serve-artifacts", "--workers", "1"]  # fmt: skip
    env = os.environ.copy()
    if admin_password is not None:
        ini = (ROOT / "deploy" / "mlflow" / "basic_auth.ini").read_text()
        (folder / "basic_auth.ini").write_text(ini.replace("sqlite:////mlflow-artifacts/", f"sqlite:///{folder}/"))
        cmd += ["--app-name", "basic-auth"]
        env |= {"MLFLOW_AUTH_CONFIG_PATH": str(folder / "basic_auth.ini"), "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
                "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32)}  # fmt: skip
    with (folder / "server.log").open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.5)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

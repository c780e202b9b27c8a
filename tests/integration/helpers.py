"""Small helpers for integration tests: waiting, counting rows, reading topics, consumer lag."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from pricemyride.settings import Settings
from pricemyride.topics import read_topic, uncommitted

__all__ = [
    "consumer_lag",
    "free_port",
    "query",
    "read_topic",
    "scalar",
    "served_dashboard",
    "spawn",
    "stop",
    "wait_for",
]
ROOT = Path(__file__).resolve().parents[2]


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def query(settings: Settings, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        return conn.execute(statement, params).fetchall()


def scalar(settings: Settings, statement: str, params: Any = None) -> Any:
    return query(settings, statement, params)[0][0]


def consumer_lag(settings: Settings) -> int:
    """Messages in the listings topic that the scoring group has not committed yet."""
    return uncommitted(settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(args: list[str], log_file: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``python ARGS`` from the repository, in a session of its own, output to ``log_file``."""
    with log_file.open("wb") as out:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=os.environ | (env or {}), start_new_session=True)  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's session, then SIGKILL after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def served_dashboard(users_file: Path, log_file: Path, **env: str) -> Iterator[int]:
    """`pricemyride dashboard` as production serves it (Waitress, the logins file); yields its port."""
    port = free_port()
    proc = spawn(["-m", "pricemyride_cli", "dashboard"], log_file,
                 {"PRICEMYRIDE_DASHBOARD_SERVER": "waitress", "PRICEMYRIDE_DASHBOARD_USERS_FILE": str(users_file),
                  "PRICEMYRIDE_DASHBOARD_PORT": str(port)} | env)  # fmt: skip
    try:
        wait_for(lambda: b"Serving on" in log_file.read_bytes() or proc.poll() is not None, 90, "the dashboard")
        assert proc.poll() is None, log_file.read_text()[-3000:]
        yield port
    finally:
        stop(proc)


def may_write(options: dict[str, Any], topic: str) -> bool:
    """Whether the Kafka login in ``options`` may produce to ``topic`` (False: the broker's ACLs refused it)."""
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    producer = KafkaProducer(**options, acks="all", max_block_ms=15_000)
    try:
        producer.send(topic, b'{"probe": true}').get(timeout=15)
        return True
    except TopicAuthorizationFailedError:
        return False
    finally:
        producer.close(timeout=2)

"""What an operator reads off every long-running service: Prometheus metrics, liveness and readiness.

Each process (scoring worker, drift monitor, retrain listener, dashboard) serves, on its own port
(``PRICEMYRIDE_METRICS_HOST``/``_PORT``; port 0 lets the OS choose, the log says which):

- ``/metrics``: the Prometheus text format of the process's registry (prometheus-client);
- ``/livez``: 200 while the process can answer at all;
- ``/readyz``: 200 when every readiness check passes, else 503 naming the checks that fail.

The port is never the dashboard's: the metrics need no login because they are never published to the host.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
import psycopg
from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics, make_wsgi_app
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from pricemyride.errors import ConfigError
from pricemyride.settings import Settings, env_name

disable_created_metrics()  # no `_created` series beside every counter: Prometheus does not use them
log = logging.getLogger(__name__)
PREFIX = "pricemyride_"
EXIT_CONFIG = 78  # EX_CONFIG
# Bucket bounds in seconds for step timings and end-to-end latency: 1 ms … 60 s.
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

C = TypeVar("C", bound=Collector)
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def reader_answers(settings: Settings) -> bool:
    """The read-only role's database answers (a readiness check of the dashboard and the API)."""
    with psycopg.connect(settings.reader_database_url.get_secret_value(), connect_timeout=2) as conn:
        return conn.execute("SELECT 1").fetchone() is not None


@dataclass
class Health:
    """Named readiness checks; the service is ready when each returns True."""

    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)

    def failing(self) -> list[str]:
        failed = []
        for name, check in self.checks.items():
            try:
                ok = check()
            except Exception:  # noqa: BLE001 - a check that raises is a check that fails
                ok = False
            if not ok:
                failed.append(name)
        return failed


class BatchHistogram(Collector):
    """A histogram observed a whole batch at a time: prometheus-client's ``Histogram.observe`` takes one
    value per call (~1 µs each), 2 ms on a 2,000-listing batch; here one ``searchsorted`` does the batch."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...] = SECONDS_BUCKETS) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = np.asarray(buckets, dtype=float)
        self.counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # the last one is +Inf
        self.total = 0.0
        self.lock = threading.Lock()

    def observe_many(self, values: np.ndarray) -> None:
        """Count a batch of durations; a negative one (clocks of two hosts apart) counts as 0."""
        if values.size == 0:
            return
        values = np.maximum(values, 0.0)
        slots = np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=self.counts.size)
        with self.lock:
            self.counts += slots
            self.total += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            cumulative, total = np.cumsum(self.counts), self.total
        labels = [*(repr(float(b)) for b in self.bounds), "+Inf"]
        buckets = list(zip(labels, cumulative.tolist(), strict=True))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)

    def describe(self) -> Iterator[Metric]:
        return self.collect()


def registered(collector: C, registry: CollectorRegistry = REGISTRY) -> C:
    registry.register(collector)
    return collector


def text_response(start: StartResponse, status: str, body: str) -> list[bytes]:
    start(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode()]


def ops_app(health: Health, registry: CollectorRegistry = REGISTRY) -> WsgiApp:
    """The WSGI app behind the ops port: /metrics, /livez, /readyz."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start)
        if path == "/livez":
            return text_response(start, "200 OK", "alive\n")
        if path == "/readyz":
            failed = health.failing()
            if failed:
                return text_response(start, "503 Service Unavailable", f"not ready: {', '.join(failed)}\n")
            return text_response(start, "200 OK", "ready\n")
        return text_response(start, "404 Not Found", f"expected /metrics, /livez or /readyz, got {path}\n")

    return app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Prometheus scrapes every few seconds; access lines would drown the service's own log."""


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


@dataclass
class OpsServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_ops(settings: Settings, role: str, health: Health) -> OpsServer | None:
    """Serve the ops app in a daemon thread (None when ``metrics_enabled`` is off)."""
    if not settings.metrics_enabled:
        log.info("%s: metrics and health are off (%s=false)", role, env_name("metrics_enabled"))
        return None
    try:
        server = make_server(settings.metrics_host, settings.metrics_port, ops_app(health),
                             server_class=ThreadingServer, handler_class=QuietHandler)  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"{env_name('metrics_host')}/{env_name('metrics_port')}: expected an address to serve "
                          f"metrics on, got {settings.metrics_host}:{settings.metrics_port} that cannot be bound "
                          f"({exc.strerror or exc})") from None  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, name=f"ops-{role}", daemon=True)
    thread.start()
    ops = OpsServer(server, thread)
    log.info("%s: metrics on http://%s:%d/metrics (health: /livez, /readyz)", role, settings.metrics_host, ops.port)
    return ops


def exported_names(registry: CollectorRegistry = REGISTRY) -> set[str]:
    """Every series name the registry exposes (``x_total`` for a counter, ``x_bucket``… for a histogram)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def serve_or_exit(settings: Settings, role: str, health: Health) -> OpsServer | None:
    """``serve_ops`` for a stream worker: a port that cannot be bound stops the process with the reason."""
    from pricemyride.process import exit_now

    try:
        return serve_ops(settings, role, health)
    except ConfigError as exc:
        exit_now(f"cannot serve metrics: {exc}", EXIT_CONFIG)

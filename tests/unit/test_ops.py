"""The ops server (metrics, liveness, readiness) and the worker's metrics, without services."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from pricemyride.errors import ConfigError, InvalidListing
from pricemyride.ops import BatchHistogram, Health, exported_names, ops_app, serve_ops
from pricemyride.parsing import parse_listing
from pricemyride.settings import Settings
from pricemyride.storage import DeadLetterRow
from stream_workers import metrics as worker_metrics
from stream_workers.metrics import WorkerMetrics, reason_class


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def histogram_samples(registry: CollectorRegistry, name: str) -> dict[str, float]:
    from prometheus_client import generate_latest

    families = text_string_to_metric_families(generate_latest(registry).decode())
    return {f"{s.name}{s.labels.get('le', '')}": s.value for f in families if f.name == name for s in f.samples}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=120, allow_nan=False), max_size=300))
def test_a_batch_histogram_exposes_what_one_observe_per_value_would(values: list[float]) -> None:
    reference, batched = CollectorRegistry(), CollectorRegistry()
    one_by_one = Histogram("latency_seconds", "x", registry=reference, buckets=(0.01, 0.1, 1.0, 10.0))
    for value in values:
        one_by_one.observe(value)
    batch = BatchHistogram("latency_seconds", "x", buckets=(0.01, 0.1, 1.0, 10.0))
    batched.register(batch)
    batch.observe_many(np.array(values[: len(values) // 2]))
    batch.observe_many(np.array(values[len(values) // 2 :]))
    expected, got = histogram_samples(reference, "latency_seconds"), histogram_samples(batched, "latency_seconds")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def test_readiness_names_the_checks_that_fail_and_liveness_always_answers() -> None:
    state = {"model": False}
    app = ops_app(Health({"champion loaded": lambda: state["model"], "partitions assigned": lambda: True}))
    calls: list[str] = []

    def call(path: str) -> tuple[str, str]:
        body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda status, _: calls.append(status)))
        return calls[-1], body.decode()

    assert call("/readyz") == ("503 Service Unavailable", "not ready: champion loaded\n")
    assert call("/livez") == ("200 OK", "alive\n")
    state["model"] = True
    assert call("/readyz") == ("200 OK", "ready\n")
    assert call("/metrics")[0].startswith("200")
    status, body = call("/nothing")
    assert status.startswith("404")
    assert "expected /metrics, /livez or /readyz, got /nothing" in body


def test_a_check_that_raises_counts_as_not_ready() -> None:
    def broken() -> bool:
        raise OSError("database unreachable")

    assert Health({"database": broken, "ok": lambda: True}).failing() == ["database"]


def test_the_ops_server_answers_over_http_and_a_taken_port_is_a_clear_error() -> None:
    ops = serve_ops(Settings(metrics_port=0), "test", Health({"always": lambda: True}))
    assert ops is not None
    try:
        assert get(f"http://127.0.0.1:{ops.port}/readyz") == (200, "ready\n")
        status, body = get(f"http://127.0.0.1:{ops.port}/metrics")
        assert status == 200
        assert "pricemyride_listings_consumed_total" in body
        expected = (
            r"PRICEMYRIDE_METRICS_HOST/PRICEMYRIDE_METRICS_PORT: expected an address to serve metrics on, "
            rf"got 127.0.0.1:{ops.port} that cannot be bound"
        )
        with pytest.raises(ConfigError, match=expected):
            serve_ops(Settings(metrics_port=ops.port), "second", Health())
    finally:
        ops.stop()


def test_metrics_can_be_turned_off() -> None:
    assert serve_ops(Settings(metrics_enabled=False), "test", Health()) is None


def test_exported_names_include_the_series_each_type_exposes() -> None:
    registry = CollectorRegistry()
    Counter("jobs_total", "x", ["kind"], registry=registry)  # no child yet: no sample, the name still counts
    Histogram("took_seconds", "x", registry=registry)
    names = exported_names(registry)
    assert {"jobs_total", "took_seconds_bucket", "took_seconds_count", "took_seconds_sum"} <= names
    assert not {"jobs", "took_seconds"} & names  # no series has the bare family name


def reason_of(raw: bytes) -> str:
    with pytest.raises(InvalidListing) as caught:
        parse_listing(raw)
    return str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"not json", "malformed"),
        (b"[1, 2]", "malformed"),
        (b'{"id": "a", "id": "b"}', "invalid_field"),
        (b'{"id": "a1", "year": "soon"}', "invalid_field"),
        (b'{"id": "a1", "price": -5}', "invalid_field"),
    ],
)
def test_dead_letter_reasons_fall_in_their_class(raw: bytes, expected: str) -> None:
    assert reason_class(reason_of(raw)) == expected


def test_a_model_failure_is_unpriceable_and_an_unnamed_one_internal() -> None:
    assert reason_class("model: could not price this listing (ValueError: boom)") == "unpriceable"
    assert reason_class("internal error: RecursionError") == "internal"


def dead(reason: str) -> DeadLetterRow:
    return DeadLetterRow("listings", 0, 1, b"k", b"v", reason, datetime.now(UTC))


def value(counter: Counter, *labels: str) -> float:
    child = counter.labels(*labels) if labels else counter
    return float(child._value.get())


def test_worker_metrics_count_a_batch_and_switched_off_count_nothing() -> None:
    before = (value(worker_metrics.CONSUMED), value(worker_metrics.DEAD_LETTERED, "malformed"))
    produced = np.array([1_000.0, 2_000.0])
    WorkerMetrics(enabled=False).batch(10, 9, [dead("listing: expected a JSON object")], produced, 3.0)
    assert (value(worker_metrics.CONSUMED), value(worker_metrics.DEAD_LETTERED, "malformed")) == before
    WorkerMetrics(enabled=True).batch(10, 9, [dead("listing: expected a JSON object")], produced, 3.0)
    assert value(worker_metrics.CONSUMED) == before[0] + 10
    assert value(worker_metrics.DEAD_LETTERED, "malformed") == before[1] + 1


def test_a_negative_latency_counts_as_zero() -> None:
    batch = BatchHistogram("skew_seconds", "x", buckets=(0.01, 1.0))
    batch.observe_many(np.array([-0.5, 0.5]))
    family = next(iter(batch.collect()))
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets == {"0.01": 1.0, "1.0": 2.0, "+Inf": 2.0}
    assert next(s.value for s in family.samples if s.name.endswith("_sum")) == 0.5

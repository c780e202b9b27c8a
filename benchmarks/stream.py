"""The streaming benchmarks of `make bench`, on the real broker and database, each in a world of its own.

- drain: N listings pre-loaded into `listings` (4 partitions); time from starting 1 or 2 scoring workers
  until every listing is stored (scored or dead-lettered) in Postgres;
- naive baseline (same run, same listings): one kafka-python consumer that parses a listing, builds a
  one-row DataFrame, calls the model, INSERTs and commits, message by message;
- latency at a fixed offered load (1,000 and 5,000 listings/s for 60 s): stored_at − event_time, where the
  producer stamps event_time as it sends and stored_at is the row's clock time inside its transaction;
- memory and CPU per worker process (peak RSS; CPU seconds per 1,000 listings after the first row);
- conservation in every run: lost and duplicated, counted in Postgres against the topic's own ids;
- metrics cost: the two-worker drain with the workers' Prometheus metrics on and scraped every 5 s (as
  shipped) against the same drain with ``PRICEMYRIDE_METRICS_ENABLED=false``, runs interleaved.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from infra.harness import WORKER_ARGS, borrow_champion, rows, spawn, topic_keys, world_env
from infra.services import Paths, pid_alive, stop_pid
from pricemyride.bootstrap import prepare
from pricemyride.errors import InvalidListing
from pricemyride.kafka import kafka_python_options
from pricemyride.parsing import parse_listing
from pricemyride.progress import progress
from pricemyride.settings import Settings
from pricing.path import price_listings
from producers.replay import replay
from training.shadow import Role, start_shadow

log = logging.getLogger("bench.stream")
METRICS_PORT = 9301  # the bench's workers' ops ports: 9301, 9302, …
SCRAPE_S = 5.0
LATENCY_RATES = (1_000, 5_000)  # offered listings/s
LATENCY = """
SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - event_time)),
       count(*), extract(epoch FROM max(event_time) - min(event_time))
FROM predictions WHERE event_time >= %s
"""


def proc_stats(pid: int) -> dict[str, float]:
    """Peak RSS (MB) and CPU seconds of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"peak_rss_mb": peak_kb / 1024, "cpu_s": (int(fields[11]) + int(fields[12])) / ticks}


@dataclass
class Bench:
    """What every streaming measurement needs: the shared services and the benchmark's registry."""

    base: Settings
    folder: Path
    registry: dict[str, str]
    stamp: str
    shadow: int | None = None  # a version of the registry to score in shadow in every world (issue 27's bench)

    def world(self, name: str, **overrides: str) -> Settings:
        """A fresh world on the shared broker (or the Kafka and guarantee ``overrides`` name), with the registry's
        champion (and ``shadow`` in shadow, as the gate would start it)."""
        os.environ.update(world_env(self.base, f"bench-{self.stamp}-{name}", self.folder / name) | self.registry
                          | overrides)  # fmt: skip
        settings = Settings()
        prepare(settings)
        champion = borrow_champion(settings)
        if self.shadow is not None:
            start_shadow(settings, self.shadow, champion, Role.CHALLENGER, "bench: a second version in shadow", {})
        return settings


class GroupProgress:
    """How many listings the workers' group has committed — cheap to poll (two Kafka requests), unlike
    counting rows in Postgres every 0.2 s, which competes with the workers for the database. A worker
    commits a batch only after storing it, so committed = stored; the final count checks it anyway."""

    def __init__(self, settings: Settings) -> None:
        self.group = settings.consumer_group
        self.admin = KafkaAdminClient(**kafka_python_options(settings))
        self.consumer = KafkaConsumer(**kafka_python_options(settings))
        numbers = sorted(self.consumer.partitions_for_topic(settings.listings_topic) or ())
        self.partitions = [TopicPartition(settings.listings_topic, p) for p in numbers]
        self.start = self.consumer.beginning_offsets(self.partitions)

    def committed(self) -> int:
        offsets = self.admin.list_group_offsets(self.group).get(self.group, {})
        return sum(max(offsets[tp].offset - self.start[tp], 0) for tp in self.partitions if tp in offsets)

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()


def handled(settings: Settings) -> int:
    found = rows(settings, "SELECT (SELECT count(DISTINCT listing_id) FROM predictions), "
                           "(SELECT count(*) FROM dead_letters)")[0]  # fmt: skip
    return int(found[0]) + int(found[1])


def conservation(settings: Settings) -> dict[str, int]:
    """Lost and duplicated against the keys actually in the topic (ids are unique per listing here)."""
    produced = set(topic_keys(settings, settings.listings_topic))
    scored = {r[0] for r in rows(settings, "SELECT listing_id FROM predictions")}
    dead = {bytes(r[0]).decode() for r in rows(settings, "SELECT key FROM dead_letters") if r[0] is not None}
    extra = rows(settings, "SELECT count(*) - count(DISTINCT listing_id) FROM predictions")[0][0]
    return {"produced": len(produced), "lost": len(produced - scored - dead),
            "duplicated": int(extra) + len(scored & dead)}  # fmt: skip


def worker_env(index: int, metrics: bool) -> dict[str, str]:
    return {"PRICEMYRIDE_METRICS_ENABLED": str(metrics).lower(), "PRICEMYRIDE_METRICS_PORT": str(METRICS_PORT + index)}


@contextlib.contextmanager
def scraped(ports: list[int]) -> Iterator[None]:
    """Fetch each port's /metrics every ``SCRAPE_S`` seconds, as Prometheus would, while the block runs."""
    stop = threading.Event()

    def scrape() -> None:
        while not stop.wait(SCRAPE_S):
            for port in ports:
                with (contextlib.suppress(OSError),
                      urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response):  # fmt: skip
                    response.read()

    thread = threading.Thread(target=scrape, name="scraper", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def running_workers(
    settings: Settings, count: int, metrics: bool = True
) -> Iterator[tuple[Paths, list[str], list[int]]]:
    """``count`` scoring workers for the duration of the block (their metrics scraped, or switched off);
    stopped however the block ends."""
    paths = Paths(settings.state_path)
    names = [f"bench-worker-{i}" for i in range(count)]
    for name in names:
        if pid_alive(paths.pid_file(name)) is not None:
            raise RuntimeError(f"{name} is already running in {paths.logs.parent}; stop it first")
    try:
        pids = [spawn(name, WORKER_ARGS, paths, worker_env(i, metrics)) for i, name in enumerate(names)]
        with scraped([METRICS_PORT + i for i in range(count)] if metrics else []):
            yield paths, names, pids
    finally:
        for name in names:
            stop_pid(name, paths, timeout_s=20)


def quiet_disk() -> None:
    """Flush what earlier runs left dirty in the page cache (Kafka segments, Postgres files) before the clock
    starts, so their write-back is not inside this measurement: right after six 200,000-listing drains, p99
    at 1,000/s measured 221 ms (43–322), against 55–107 ms in lone runs."""
    os.sync()
    time.sleep(1)


def drain_once(bench: Bench, name: str, listings: Path, workers: int, metrics: bool = True,
               **overrides: str) -> dict[str, Any]:  # fmt: skip
    settings = bench.world(name, **overrides)
    replay(settings, listings, progress=False)
    total = len(topic_keys(settings, settings.listings_topic))
    quiet_disk()
    group = GroupProgress(settings)
    started = time.perf_counter()
    with running_workers(settings, workers, metrics) as (paths, names, pids):
        first_cpu: list[float] | None = None
        first_rows, first_at = 0, started
        while (done := group.committed()) < total:
            if any(pid_alive(paths.pid_file(n)) is None for n in names):
                raise RuntimeError(f"a worker died; see {paths.logs}")
            if first_cpu is None and done > 0:
                first_cpu, first_rows, first_at = [proc_stats(p)["cpu_s"] for p in pids], done, time.perf_counter()
            time.sleep(0.05)
        ended = time.perf_counter()
        seconds = ended - started
        stats = [proc_stats(p) for p in pids]
    group.close()
    if (stored := handled(settings)) < total:
        raise RuntimeError(f"the group committed {total} listings but Postgres holds {stored}")
    steady_cpu = sum(s["cpu_s"] for s in stats) - sum(first_cpu or [0.0])
    return {
        "seconds": seconds, "listings_per_s": total / seconds, "startup_s": first_at - started,
        "steady_listings_per_s": (total - first_rows) / max(ended - first_at, 1e-9),
        "peak_rss_mb": max(s["peak_rss_mb"] for s in stats),
        "cpu_s_per_1000": 1000 * steady_cpu / max(total - first_rows, 1),
    } | conservation(settings)  # fmt: skip


def naive_once(bench: Bench, name: str, listings: Path, model: Any, version: int, limit: int) -> dict[str, Any]:
    """The per-message baseline: parse, price (the pricing path, one listing), INSERT, commit — one at a time."""
    settings = bench.world(name)
    replay(settings, listings, limit=limit, progress=False)
    consumer = KafkaConsumer(settings.listings_topic, **kafka_python_options(settings), group_id=f"naive-{name}",
                             enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
    count, started = 0, None
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        for message in consumer:
            started = started or time.perf_counter()
            try:
                listing = parse_listing(message.value)
                (price,) = price_listings(model, version, [listing], datetime.now(UTC))
                if isinstance(price, str):
                    raise InvalidListing(price)
                conn.execute(
                    "INSERT INTO predictions (listing_id, model_version, event_id, predicted_price, price_low, "
                    "price_high, asking_price, event_time, scored_at, listing) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), %s) ON CONFLICT DO NOTHING",
                    [listing.id, version, listing.event_id, price.predicted_price, price.price_low, price.price_high,
                     listing.price, listing.event_time, listing.model_dump_json()],
                )  # fmt: skip
            except InvalidListing as exc:
                conn.execute(
                    'INSERT INTO dead_letters (topic, partition, "offset", key, payload, reason, failed_at) '
                    "VALUES (%s, %s, %s, %s, %s, %s, now()) ON CONFLICT DO NOTHING",
                    [message.topic, message.partition, message.offset, message.key, message.value, str(exc)],
                )
            conn.commit()
            consumer.commit()
            count += 1
            if count >= limit:
                break
    consumer.close()
    seconds = time.perf_counter() - (started or time.perf_counter())
    return {"seconds": seconds, "listings_per_s": count / seconds} | conservation(settings)


def latency_once(bench: Bench, name: str, listings: Path, rate: int, seconds: int, workers: int,
                 metrics: bool = True) -> dict[str, Any]:  # fmt: skip
    """Offer ``rate`` listings/s for ``seconds`` to running workers; percentiles of stored − produced.

    The listings come from a file loaded before the first send, so generating them takes no CPU while
    the clock runs; the sent rate is read back from the stored event times."""
    settings = bench.world(name)
    with running_workers(settings, workers, metrics):
        replay(settings, None, limit=200, seed=99, progress=False)  # warm-up: workers joined and scoring
        deadline = time.monotonic() + 120
        while handled(settings) < 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        quiet_disk()
        since = datetime.now(UTC)
        replay(settings, listings, rate=rate, limit=rate * seconds, progress=False)
        total = len(topic_keys(settings, settings.listings_topic))
        deadline = time.monotonic() + 300
        while handled(settings) < total and time.monotonic() < deadline:
            time.sleep(0.5)
    (p50, p95, p99), measured, span_s = rows(settings, LATENCY, [since])[0]
    sent_per_s = (int(measured) - 1) / max(float(span_s), 1e-9)
    return {"offered_per_s": rate, "sent_per_s": sent_per_s, "measured": int(measured), "p50_ms": 1000 * p50,
            "p95_ms": 1000 * p95, "p99_ms": 1000 * p99} | conservation(settings)  # fmt: skip


def drain_metrics_ab(bench: Bench, listings: Path, repeats: int) -> dict[str, Any]:
    """Two workers with metrics (as shipped) and without, interleaved so drift in the machine hits both."""
    on: list[dict[str, Any]] = []
    off: list[dict[str, Any]] = []
    for i in progress(range(repeats), "drain runs, 2 workers, metrics on / off"):
        on.append(drain_once(bench, f"drain2w{i}", listings, 2, metrics=True))
        off.append(drain_once(bench, f"drain2wnm{i}", listings, 2, metrics=False))
    return {"2_worker": summarise(on), "2_worker_metrics_off": summarise(off)}


def latency_metrics_ab(bench: Bench, listings: Path, rate: int, seconds: int, repeats: int) -> dict[str, Any]:
    """Latency at ``rate``/s on two workers with metrics (scraped every 5 s) and without, interleaved."""
    on: list[dict[str, Any]] = []
    off: list[dict[str, Any]] = []
    for i in progress(range(repeats), f"latency runs at {rate}/s, metrics on / off"):
        on.append(latency_once(bench, f"labm{i}", listings, rate, seconds, 2, metrics=True))
        off.append(latency_once(bench, f"labn{i}", listings, rate, seconds, 2, metrics=False))
    return {"with_metrics": summarise(on), "without_metrics": summarise(off)}


GUARANTEES = {"1_broker_at_least_once": "at_least_once", "1_broker_exactly_once": "exactly_once",
              "3_brokers_exactly_once": "exactly_once", "3_brokers_at_least_once": "at_least_once"}  # fmt: skip


def drain_guarantees(bench: Bench, listings: Path, repeats: int, cluster_env: dict[str, str]) -> dict[str, Any]:
    """Two workers draining the backlog on the single broker and on the 3-broker cluster (``cluster_env``),
    with transactional outputs and without; the four configurations interleaved in each repeat."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in GUARANTEES}
    for i in progress(range(repeats), "drain runs, 2 workers: 1 or 3 brokers × exactly / at-least once"):
        for k, (label, guarantee) in enumerate(GUARANTEES.items()):
            env = {"PRICEMYRIDE_PROCESSING_GUARANTEE": guarantee} | (cluster_env if label.startswith("3") else {})
            runs[label].append(drain_once(bench, f"g{i}c{k}", listings, 2, True, **env))
    return {label: summarise(r) for label, r in runs.items()}


def summary_of(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in runs[0] if isinstance(runs[0][k], int | float)]
    return {k: summary_of([float(r[k]) for r in runs]) for k in keys}


def bench_stream(bench: Bench, listings: Path, model: Any, version: int, repeats: int, latency_s: int,
                 naive_limit: int, latency_listings: Path,
                 latency_workers: int | None = None) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"drain": {}, "latency": {}}
    one = [drain_once(bench, f"drain1w{i}", listings, 1) for i in progress(range(repeats), "drain runs, 1 worker")]
    out["drain"]["1_worker"] = summarise(one)
    out["drain"] |= drain_metrics_ab(bench, listings, repeats)
    for label, result in out["drain"].items():
        log.warning("drain, %s: median %.0f listings/s", label, result["listings_per_s"]["median"])
    naive = [naive_once(bench, f"naive{i}", listings, model, version, naive_limit)
             for i in progress(range(repeats), "naive baseline runs", total=repeats)]  # fmt: skip
    out["naive"] = summarise(naive)
    shipped = [k for k in out["drain"] if not k.endswith("metrics_off")]
    best = max(shipped, key=lambda k: out["drain"][k]["listings_per_s"]["median"])
    out["best_drain_configuration"] = best
    workers = latency_workers or int(best.split("_")[0])
    for rate in LATENCY_RATES:
        runs = [latency_once(bench, f"lat{rate}r{i}", latency_listings, rate, latency_s, workers)
                for i in progress(range(repeats), f"latency runs at {rate}/s", total=repeats)]  # fmt: skip
        out["latency"][f"{rate}_per_s"] = summarise(runs)
        log.warning("latency at %d/s: p99 median %.0f ms", rate, out["latency"][f"{rate}_per_s"]["p99_ms"]["median"])
    return out

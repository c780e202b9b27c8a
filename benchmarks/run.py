"""`make bench`: measured on the real broker and database, medians of repeated runs, written to reports/.

- drift: Evidently window computation time at 1k, 5k and 20k rows (the drift worker's per-window cost);
- stream (benchmarks/stream.py): 200,000-listing backlog drain with 1 and 2 workers, the naive
  per-message baseline in the same run, latency at 1,000 and 5,000 listings/s, memory and CPU, and
  conservation (lost, duplicated) in every run;
- pricing (benchmarks/pricing.py): µs per listing of the pricing path against a point-price baseline;
- dashboard: each page's refresh on 1,000,000 and 5,000,000 prediction rows against a 10,000-row baseline,
  and the market rollups' refresh;
- api (benchmarks/api.py): the served valuation API under open-loop HTTP load over 1,000,000 stored
  predictions (baseline: 10,000), batches of 100, and the comparables query from 10,000 to 1,000,000 rows.

Each configuration runs ``--repeats`` times; the report gives the median and the range.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks import api as api_bench
from benchmarks import dashboard as dashboard_bench
from benchmarks import pricing as pricing_bench
from benchmarks import shadow as shadow_bench
from benchmarks import stream
from benchmarks.stream import summary_of
from infra.chaos_cluster import chaos_cluster, cluster_env
from monitoring.drift import compute_window
from pricemyride.generator import generate_listings
from pricemyride.policy import DriftPolicy
from pricemyride.process import configure_logging
from pricemyride.settings import Settings
from training.data import model_input
from training.model import TrainParams
from training.registry import load_champion
from training.train import train

log = logging.getLogger("bench")
WORKER, MONITOR = "drift-worker", "drift-monitor"


def int_list(text: str) -> tuple[int, ...]:
    """ "1000000,5000000" → (1000000, 5000000), for the options that take sizes."""
    return tuple(int(x) for x in text.split(","))


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_drift(model: Any, repeats: int) -> dict[str, Any]:
    """Seconds to compute one drift window against a 5,000-row reference."""
    policy = DriftPolicy()
    reference = generate_listings(5_000, seed=1, dirty=False)
    reference = pd.concat([model_input(reference).assign(price=reference["price"].to_numpy()),
                           model.predict_range(model_input(reference))], axis=1)  # fmt: skip
    compute_window(policy, reference, reference.head(500), None)  # warm-up: imports, first report
    results = {}
    for n in (1_000, 5_000, 20_000):
        current = generate_listings(n, seed=2)
        current = pd.concat([model_input(current).assign(price=current["price"].to_numpy()),
                             model.predict_range(model_input(current))], axis=1)  # fmt: skip
        runs = [timed(lambda: compute_window(policy, reference, current, 3_000.0)) for _ in range(repeats)]  # noqa: B023
        results[f"{n}_rows_s"] = summary_of(runs)
        log.info("drift window of %d rows: median %.2f s", n, results[f"{n}_rows_s"]["median"])
    return results


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks", "",
        f"{report['generated_at']} · {report['machine']['cores']} cores, {report['machine']['memory_gb']:.0f} GB · "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), "",
    ]  # fmt: skip
    if "stream" in report:
        lines += stream_markdown(report)
    if "drift" in report:
        lines += drift_markdown(report["drift"])
    if "pricing" in report:
        lines += pricing_bench.pricing_markdown(report["pricing"])
    if "dashboard" in report:
        lines += dashboard_bench.markdown(report["dashboard"])
    if "api" in report:
        lines += api_bench.markdown(report["api"])
    if "guarantees" in report:
        lines += guarantees_markdown(report["guarantees"])
    if "shadow" in report:
        lines += shadow_bench.markdown(report["shadow"])
    return "\n".join(lines)


def drift_markdown(d: dict[str, Any]) -> list[str]:
    return [
        "## Drift window computation (Evidently, 5,000-row reference)", "",
        "| window rows | median s | min–max s |", "|---:|---:|---:|",
        *[f"| {k.split('_')[0]} | {v['median']:.2f} | {v['min']:.2f}–{v['max']:.2f} |" for k, v in d.items()], "",
    ]  # fmt: skip


def stream_markdown(report: dict[str, Any]) -> list[str]:
    s = report["stream"]
    lines = [
        f"## Backlog drain ({report['listings']:,} listings pre-loaded into 4 partitions)", "",
        "Listings/s counts from starting the worker processes; *first row after* is their start-up (imports, "
        "champion loaded, group joined), *steady* the rate from the first committed batch to the last.", "",
        "| configuration | listings/s median | min–max | first row after s | steady listings/s | "
        "peak RSS MB / worker | CPU s / 1,000 | lost | duplicated |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for label, r in [*s["drain"].items(), ("naive per-message baseline", s["naive"])]:
        rss = f"{r['peak_rss_mb']['median']:.0f}" if "peak_rss_mb" in r else "—"
        cpu = f"{r['cpu_s_per_1000']['median']:.2f}" if "cpu_s_per_1000" in r else "—"
        first = f"{r['startup_s']['median']:.1f}" if "startup_s" in r else "—"
        steady = f"{r['steady_listings_per_s']['median']:,.0f}" if "steady_listings_per_s" in r else "—"
        lines.append(f"| {label.replace('_', ' ')} | {r['listings_per_s']['median']:,.0f} | "
                     f"{r['listings_per_s']['min']:,.0f}–{r['listings_per_s']['max']:,.0f} | {first} | {steady} | "
                     f"{rss} | {cpu} | {r['lost']['max']:.0f} | {r['duplicated']['max']:.0f} |")  # fmt: skip
    cost = report["metrics_cost"]
    lines += [
        "",
        f"Metrics cost (two workers, runs interleaved, metrics scraped every 5 s): steady drain "
        f"{cost['steady_with_metrics']:,.0f}/s with metrics, {cost['steady_without_metrics']:,.0f}/s "
        f"without: **{cost['ratio']:.3f}×** (medians of {s['drain']['2_worker']['listings_per_s']['runs']:.0f}).",
    ]
    lines += ["", f"Speedup of the best configuration ({s['best_drain_configuration'].replace('_', ' ')}) over the "
              f"naive baseline, same run: **{report['speedup']:.1f}×**.", "",
              f"## Latency at a fixed offered load ({report['latency_seconds']} s each, "
              f"{s['best_drain_configuration'].replace('_', ' ')})", "",
              "| offered / s | sent / s | p50 ms | p95 ms | p99 ms (median, min–max) | lost | duplicated |",
              "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in s["latency"].values():
        lines.append(f"| {int(r['offered_per_s']['median']):,} | {r['sent_per_s']['median']:,.0f} | "
                     f"{r['p50_ms']['median']:,.0f} | {r['p95_ms']['median']:,.0f} | {r['p99_ms']['median']:,.0f} "
                     f"({r['p99_ms']['min']:,.0f}–{r['p99_ms']['max']:,.0f}) | {r['lost']['max']:.0f} | "
                     f"{r['duplicated']['max']:.0f} |")  # fmt: skip
    return [*lines, ""]


def listings_file(folder: Path, count: int, seed: int) -> Path:
    """``count`` generated listings in the Craigslist format, written once and reused by later runs."""
    path = folder / f"listings-{count}-s{seed}.csv"
    if not path.exists():
        generate_listings(count, seed=seed).to_csv(path, index=False)
    return path


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=200_000)
    parser.add_argument("--latency-seconds", type=int, default=60)
    parser.add_argument(
        "--latency-workers",
        type=int,
        choices=[1, 2],
        help="workers for the latency runs (default: "
        "the fastest-draining configuration; fix it for an A/B, so both arms compare like with like)",
    )
    parser.add_argument("--naive-listings", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--dashboard-rows",
        type=int_list,
        default=(1_000_000, 5_000_000),
        help="stored predictions for the dashboard runs (each against a 10,000-row baseline)",
    )
    parser.add_argument(
        "--api-rows",
        type=int_list,
        default=(10_000, 100_000, 1_000_000),
        help="stored predictions for the API runs",
    )
    parser.add_argument("--api-seconds", type=float, default=20.0, help="seconds of each API load run")
    parser.add_argument("--only", choices=["stream", "pricing", "dashboard", "api", "metrics-latency", "guarantees",
                                           "shadow"],
                        help="one part (default: all but metrics-latency, which writes its own report; "
                             "guarantees, api, shadow, dashboard: their section only)")  # fmt: skip
    parser.add_argument("--out-dir", type=Path, default=Path("reports"))
    return parser.parse_args()


def bench_model(folder: Path) -> tuple[int, Any]:
    """A model of the bench's own (its own registry in the bench folder): its version and the loaded model."""
    tracking = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ.update({"PRICEMYRIDE_MLFLOW_TRACKING_URI": tracking,
                       "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT": str(folder / "artifacts")})  # fmt: skip
    model = train(Settings(), None, params=TrainParams(max_rounds=300), promote=True).version  # the bench measures it
    return model, load_champion(Settings()).model


def bench_of(base: Settings, folder: Path, stamp: str) -> stream.Bench:
    """Worlds on the shared services with the bench's own registry (``bench_model`` set it in the environment)."""
    registry = {k: os.environ[k] for k in ("PRICEMYRIDE_MLFLOW_TRACKING_URI", "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT")}
    return stream.Bench(base, folder, registry, stamp)


def run_stream(args: argparse.Namespace, base: Settings, folder: Path, stamp: str, model: int, champion: Any,
               report: dict[str, Any]) -> None:  # fmt: skip
    listings = listings_file(folder, args.listings, seed=11)
    latency_listings = listings_file(folder, max(stream.LATENCY_RATES) * args.latency_seconds, seed=12)
    bench = bench_of(base, folder, stamp)
    report |= {"listings": args.listings, "latency_seconds": args.latency_seconds}
    report["stream"] = stream.bench_stream(bench, listings, champion, model, args.repeats, args.latency_seconds,
                                           args.naive_listings, latency_listings, args.latency_workers)  # fmt: skip
    s = report["stream"]
    report["drain_listings_per_s"] = s["drain"][s["best_drain_configuration"]]["listings_per_s"]["median"]
    report["naive_listings_per_s"] = s["naive"]["listings_per_s"]["median"]
    report["speedup"] = report["drain_listings_per_s"] / report["naive_listings_per_s"]
    report["p99_ms_at_1000"] = s["latency"]["1000_per_s"]["p99_ms"]["median"]
    report["p99_ms_at_5000"] = s["latency"]["5000_per_s"]["p99_ms"]["median"]
    report["worker_peak_rss_mb"] = max(d["peak_rss_mb"]["max"] for d in s["drain"].values())
    on, off = (s["drain"][k]["steady_listings_per_s"]["median"] for k in ("2_worker", "2_worker_metrics_off"))
    report["metrics_cost"] = {"steady_with_metrics": on, "steady_without_metrics": off, "ratio": on / off}
    report["drift"] = bench_drift(champion, args.repeats)


def run_guarantees(args: argparse.Namespace, base: Settings, folder: Path, stamp: str, report: dict[str, Any]) -> None:
    """The two-worker drain on 1 and 3 brokers, exactly once and at least once (a 3-broker cluster of the
    bench's own, ports 19092–19094, as `make chaos` starts it)."""
    listings = listings_file(folder, args.listings, seed=11)
    registry = {k: os.environ[k] for k in ("PRICEMYRIDE_MLFLOW_TRACKING_URI", "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT")}
    bench = stream.Bench(base, folder, registry, stamp)
    with chaos_cluster(base, folder / f"cluster-{stamp}") as cluster:
        runs = stream.drain_guarantees(bench, listings, args.repeats, cluster_env(cluster))
    baseline = runs["1_broker_at_least_once"]["steady_listings_per_s"]["median"]
    report["guarantees"] = {"listings": args.listings, "drain": runs, "baseline": "1_broker_at_least_once",
                            "steady_ratio": {k: r["steady_listings_per_s"]["median"] / baseline
                                             for k, r in runs.items()}}  # fmt: skip


def guarantees_markdown(g: dict[str, Any]) -> list[str]:
    lines = [
        f"## Delivery guarantees and the 3-broker cluster ({g['listings']:,} listings, 2 workers)", "",
        "The same backlog drained on the single broker and on a local 3-broker KRaft cluster (replication 3, "
        "min.insync.replicas 2, acks=all), with each batch's outputs and offsets in Kafka transactions "
        "(exactly once) or published then committed (at least once); configurations interleaved, medians.", "",
        "| configuration | listings/s | steady listings/s (min–max) | steady vs 1 broker at-least-once | "
        "CPU s / 1,000 | lost | duplicated |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for label, r in g["drain"].items():
        steady = r["steady_listings_per_s"]
        lines.append(f"| {label.replace('_', ' ')} | {r['listings_per_s']['median']:,.0f} | {steady['median']:,.0f} "
                     f"({steady['min']:,.0f}–{steady['max']:,.0f}) | {g['steady_ratio'][label]:.2f}× | "
                     f"{r['cpu_s_per_1000']['median']:.2f} | {r['lost']['max']:.0f} | "
                     f"{r['duplicated']['max']:.0f} |")  # fmt: skip
    return [*lines, ""]


def run_metrics_latency(args: argparse.Namespace, base: Settings, folder: Path, stamp: str,
                        report: dict[str, Any]) -> int:  # fmt: skip
    """p50/p95/p99 at 1,000 listings/s with the workers' metrics on and off, same run → bench_metrics_latency.*"""
    listings = listings_file(folder, 1_000 * args.latency_seconds, seed=12)
    registry = {k: os.environ[k] for k in ("PRICEMYRIDE_MLFLOW_TRACKING_URI", "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT")}
    bench = stream.Bench(base, folder, registry, stamp)
    report["latency_ab"] = stream.latency_metrics_ab(bench, listings, 1_000, args.latency_seconds, args.repeats)
    lines = ["# Metrics cost on latency", "", f"{report['generated_at']} · 1,000 listings/s offered for "
             f"{args.latency_seconds} s, two workers, runs interleaved; medians (min–max) of {args.repeats}.", "",
             "| workers | p50 ms | p95 ms | p99 ms | lost | duplicated |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for label, r in report["latency_ab"].items():
        p99 = r["p99_ms"]
        lines.append(f"| {label.replace('_', ' ')} | {r['p50_ms']['median']:.0f} | {r['p95_ms']['median']:.0f} | "
                     f"{p99['median']:.0f} ({p99['min']:.0f}–{p99['max']:.0f}) | {r['lost']['max']:.0f} | "
                     f"{r['duplicated']['max']:.0f} |")  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "bench_metrics_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / "bench_metrics_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def run_shadow(args: argparse.Namespace, bench: stream.Bench, folder: Path) -> dict[str, Any]:
    """One worker with and without a shadow version: drain and p99 at 1,000/s (``benchmarks.shadow``)."""
    listings = listings_file(folder, args.listings, seed=11)
    latency = listings_file(folder, shadow_bench.RATE * args.latency_seconds, seed=12)
    return shadow_bench.bench_shadow(bench, listings, latency, args.repeats, args.latency_seconds)


def write_report(out_dir: Path, report: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "bench.md").write_text(markdown(report))
    print(markdown(report))


def main() -> int:
    args = arguments()
    configure_logging()
    base = Settings()
    folder = base.state_path / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    model, champion = bench_model(folder)
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9,  # noqa: E501
                    "python": platform.python_version()},
        "versions": {p: version(p) for p in ("faust-streaming", "xgboost-cpu", "evidently", "psycopg", "dash")},
        "model_version": model,
    }  # fmt: skip
    stamp = datetime.now(UTC).strftime("%H%M%S")
    if args.only == "metrics-latency":
        return run_metrics_latency(args, base, folder, stamp, report)
    if args.only in (None, "stream"):
        run_stream(args, base, folder, stamp, model, champion, report)
    if args.only in (None, "pricing"):
        report["pricing"] = pricing_bench.bench_pricing(champion, args.repeats)
    if args.only in (None, "dashboard"):
        report["dashboard"] = dashboard_bench.bench_dashboard(base, folder, stamp, args.dashboard_rows, args.repeats)
    if args.only in (None, "api"):
        report["api"] = api_bench.bench_api(bench_of(base, folder, stamp), args.api_rows, args.api_seconds,
                                            args.repeats)  # fmt: skip
    if args.only in (None, "guarantees"):
        run_guarantees(args, base, folder, stamp, report)
    if args.only in (None, "shadow"):
        report["shadow"] = run_shadow(args, bench_of(base, folder, stamp), folder)
    if args.only in ("guarantees", "api", "shadow", "dashboard") and (args.out_dir / "bench.json").exists():
        report = json.loads((args.out_dir / "bench.json").read_text()) | {args.only: report[args.only]}
    write_report(args.out_dir, report)
    audited = [
        *report.get("stream", {}).get("drain", {}).values(),
        *report.get("stream", {}).get("latency", {}).values(),
        *report.get("guarantees", {}).get("drain", {}).values(),
    ]
    lost = max((r["lost"]["max"] + r["duplicated"]["max"] for r in audited), default=0)
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())

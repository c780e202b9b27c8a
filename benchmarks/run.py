"""`make bench`: measured on the real broker and database, medians of repeated runs, written to reports/.

- drift: Evidently window computation time at 1k, 5k and 20k rows (the drift worker's per-window cost);
- drain: listings pre-loaded into `listings`, time from scoring-worker start until every one is stored
  in Postgres, with and without the drift worker running beside it (same run, same machine);
- conservation in every drain run: lost and duplicated, counted in Postgres against the produced ids;
- dashboard: each page's refresh on 1,000,000 prediction rows against a 10,000-row baseline.

Each configuration runs ``--repeats`` times; the report gives the median and the range.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks import dashboard as dashboard_bench
from infra.demo import spawn
from infra.demo_drift import LOOP_PROCESSES, rows, topic_keys, world_env
from infra.services import Paths, pid_alive, stop_pid
from monitoring.drift import compute_window
from monitoring.policy import DriftPolicy
from pricemyride.bootstrap import prepare
from pricemyride.cli import configure_logging
from pricemyride.progress import progress
from pricemyride.settings import Settings
from producers.generator import generate_listings
from producers.replay import replay
from training.model import TrainParams
from training.train import model_input, train

log = logging.getLogger("bench")
WORKER, MONITOR = "drift-worker", "drift-monitor"


def summary_of(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


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


def proc_stats(pid: int) -> dict[str, float]:
    """Peak RSS (MB) and CPU seconds of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"peak_rss_mb": peak_kb / 1024, "cpu_s": (int(fields[11]) + int(fields[12])) / ticks}


def drain_once(
    base: Settings, folder: Path, name: str, listings: Path, tracking: str, with_monitor: bool
) -> dict[str, Any]:
    """Pre-load the listings, start the worker, time until all are stored; count lost and duplicated."""
    os.environ.update(world_env(base, name, folder / name, PRICEMYRIDE_MLFLOW_TRACKING_URI=tracking))
    settings = Settings()
    prepare(settings)
    replay(settings, listings, progress=False)
    produced = set(topic_keys(settings, settings.listings_topic))
    paths = Paths(settings.state_path)
    started = time.perf_counter()
    pid = spawn(WORKER, LOOP_PROCESSES[WORKER], paths)
    if with_monitor:
        spawn(MONITOR, LOOP_PROCESSES[MONITOR], paths)
    done = lambda: rows(settings, "SELECT (SELECT count(DISTINCT listing_id) FROM predictions) + "  # noqa: E731
                                  "(SELECT count(*) FROM dead_letters)")[0][0] >= len(produced)  # fmt: skip
    while not done():
        if pid_alive(paths.pid_file(WORKER)) is None:
            raise RuntimeError(f"the worker died; see {paths.logs / (WORKER + '.log')}")
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    stats = proc_stats(pid)
    for process in (WORKER, MONITOR):
        stop_pid(process, paths, timeout_s=20)
    scored = {r[0] for r in rows(settings, "SELECT listing_id FROM predictions")}
    dead = {bytes(r[0]).decode() for r in rows(settings, "SELECT key FROM dead_letters") if r[0] is not None}
    dup = rows(settings, "SELECT count(*) - count(DISTINCT (listing_id, model_version)) FROM predictions")[0][0]
    return {
        "seconds": seconds, "listings_per_s": len(produced) / seconds, "produced": len(produced),
        "lost": len(produced - scored - dead), "duplicated": int(dup) + len(scored & dead),
        "peak_rss_mb": stats["peak_rss_mb"], "cpu_s_per_1000": 1000 * stats["cpu_s"] / len(produced),
    }  # fmt: skip


def bench_drain(base: Settings, folder: Path, n: int, repeats: int, tracking: str) -> dict[str, Any]:
    listings = folder / "listings.csv"
    generate_listings(n, seed=11).to_csv(listings, index=False)
    results: dict[str, Any] = {}
    stamp = datetime.now(UTC).strftime("%H%M%S")
    for label, with_monitor in (("worker_only", False), ("with_drift_worker", True)):
        runs = []
        for i in progress(range(repeats), f"drain runs ({label})", total=repeats):
            runs.append(drain_once(base, folder, f"bench-{stamp}-{label[:4]}{i}", listings, tracking, with_monitor))
            log.info("drain %s run %d: %.0f listings/s", label, i + 1, runs[-1]["listings_per_s"])
        results[label] = {key: summary_of([r[key] for r in runs]) for key in runs[0] if key != "produced"}
        results[label]["produced"] = n
    return results


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks", "",
        f"{report['generated_at']} · {report['machine']['cores']} cores, {report['machine']['memory_gb']:.0f} GB · "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), "",
    ]  # fmt: skip
    if "drift" in report:
        lines += drift_and_drain_markdown(report)
    if "dashboard" in report:
        lines += dashboard_bench.markdown(report["dashboard"])
    return "\n".join(lines)


def drift_and_drain_markdown(report: dict[str, Any]) -> list[str]:
    d, w = report["drift"], report["drain"]
    lines = [
        "## Drift window computation (Evidently, 5,000-row reference)", "",
        "| window rows | median s | min–max s |", "|---:|---:|---:|",
        *[f"| {k.split('_')[0]} | {v['median']:.2f} | {v['min']:.2f}–{v['max']:.2f} |" for k, v in d.items()], "",
        f"## Backlog drain ({w['worker_only']['produced']:,} listings pre-loaded, 1 scoring worker)", "",
        "| configuration | listings/s (median) | range | peak RSS MB | CPU s / 1,000 | lost | duplicated |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for label, r in w.items():
        lines.append(
            f"| {label.replace('_', ' ')} | {r['listings_per_s']['median']:,.0f} | {r['listings_per_s']['min']:,.0f}–"
            f"{r['listings_per_s']['max']:,.0f} | {r['peak_rss_mb']['median']:.0f} "
            f"| {r['cpu_s_per_1000']['median']:.2f} "
            f"| {r['lost']['max']:.0f} | {r['duplicated']['max']:.0f} |"
        )
    ratio = w["with_drift_worker"]["listings_per_s"]["median"] / w["worker_only"]["listings_per_s"]["median"]
    lines += ["", f"Throughput with the drift worker running is {ratio:.2f}× the worker alone (same run).", ""]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dashboard-rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["stream", "dashboard"], help="run one part (default: all)")
    parser.add_argument("--out-dir", type=Path, default=Path("reports"))
    args = parser.parse_args()
    configure_logging()
    base = Settings()
    folder = base.state_path / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    tracking = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ.update({"PRICEMYRIDE_MLFLOW_TRACKING_URI": tracking,
                       "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT": str(folder / "artifacts")})  # fmt: skip
    model = train(Settings(), None, params=TrainParams(max_rounds=300)).version
    from training.registry import load_champion

    champion = load_champion(Settings()).model
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9,  # noqa: E501
                    "python": platform.python_version()},
        "versions": {p: version(p) for p in ("faust-streaming", "xgboost-cpu", "evidently", "psycopg", "dash")},
        "model_version": model,
    }  # fmt: skip
    stamp = datetime.now(UTC).strftime("%H%M%S")
    if args.only in (None, "stream"):
        report["drift"] = bench_drift(champion, args.repeats)
        report["drain"] = bench_drain(base, folder, args.listings, args.repeats, tracking)
        report["drain_listings_per_s"] = report["drain"]["worker_only"]["listings_per_s"]["median"]
    if args.only in (None, "dashboard"):
        report["dashboard"] = dashboard_bench.bench_dashboard(base, folder, stamp, args.dashboard_rows, args.repeats)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / "bench.md").write_text(markdown(report))
    print(markdown(report))
    lost = max((r["lost"]["max"] + r["duplicated"]["max"] for r in report.get("drain", {}).values()), default=0)
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())

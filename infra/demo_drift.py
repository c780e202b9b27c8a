"""``make demo-drift``: the closed loop on real data, end to end.

The champion is trained on the 2020 Craigslist sample; the 2021 sample is then streamed in posting
order (the 2021 used-car price surge). The drift worker sees realized error and asking prices move,
requests a retrain, the retrain listener runs the Prefect flow on the labelled 2021 listings stored so
far plus the 2020 file, the offline gate passes the challenger, it scores in shadow until the live gate
promotes it (or not), and the scoring worker hot-swaps to it.
It ends by printing one line of JSON and exits non-zero if any listing was lost or duplicated.

Everything runs in a world of its own (database, topics, consumer groups, MLflow registry) so it never
mixes with `make demo`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infra.harness import WORKER_ARGS, rows, spawn, topic_keys, world_env
from infra.services import Paths, stop_pid
from pricemyride.bootstrap import prepare
from pricemyride.process import configure_logging
from pricemyride.settings import Settings
from producers.replay import replay
from training.cleaning import is_usable_label
from training.train import train

log = logging.getLogger("demo-drift")
LOOP_PROCESSES = {
    "drift-worker": WORKER_ARGS,
    "drift-monitor": ["-m", "monitoring", "worker", "-l", "info"],
    "drift-retrainer": ["-m", "pricemyride_cli", "retrain-listener"],
}


def start_loop(settings: Settings) -> None:
    paths = Paths(settings.state_path)
    for name, args in LOOP_PROCESSES.items():
        spawn(name, args, paths)


def stop_loop(settings: Settings) -> None:
    paths = Paths(settings.state_path)
    for name in LOOP_PROCESSES:
        stop_pid(name, paths, timeout_s=20)


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(1.0)
    log.error("gave up waiting for %s after %.0f s", what, timeout_s)
    return False


def promoted_after(settings: Settings, version: int) -> tuple[int, datetime] | None:
    found = rows(settings, "SELECT version, at FROM model_events WHERE kind = 'promoted' AND version > %s "
                           "ORDER BY at LIMIT 1", [version])  # fmt: skip
    return (int(found[0][0]), found[0][1]) if found else None


def all_handled(settings: Settings, produced: int) -> bool:
    scored = rows(settings, "SELECT count(DISTINCT listing_id) FROM predictions")[0][0]
    dead = rows(settings, "SELECT count(*) FROM dead_letters")[0][0]
    return bool(scored + dead >= produced)


def realized_mae(frame: pd.DataFrame) -> float | None:
    labelled = frame[is_usable_label(frame)] if len(frame) else frame
    if labelled.empty:
        return None
    return float(np.abs(labelled["predicted_price"] - labelled["price"]).mean())


def summary(
    settings: Settings, produced_ids: list[str], first: int, promotion: tuple[int, datetime] | None
) -> dict[str, Any]:
    """The loop's figures, counted in Postgres against the ids offered to Kafka."""
    stored = rows(settings, "SELECT listing_id, model_version, predicted_price, scored_at, listing FROM predictions")
    frame = pd.DataFrame([{**r[4], "listing_id": r[0], "model_version": r[1], "predicted_price": r[2],
                           "scored_at": r[3]} for r in stored])  # fmt: skip
    dead_keys = [bytes(r[0]).decode("utf-8", "replace") if r[0] is not None else ""
                 for r in rows(settings, "SELECT key FROM dead_letters")]  # fmt: skip
    scored_ids = set(frame["listing_id"]) if len(frame) else set()
    pairs = rows(settings, "SELECT count(*) - count(DISTINCT (listing_id, model_version)) FROM predictions")[0][0]
    promoted_version, promoted_at = promotion if promotion else (None, None)
    before = frame[frame["model_version"] == first] if len(frame) else frame
    after = frame[frame["model_version"] == promoted_version] if promotion and len(frame) else frame.iloc[0:0]
    swap = (after["scored_at"].min() - promoted_at).total_seconds() if promotion and len(after) else None
    counts = {k: rows(settings, f"SELECT count(*) FROM {t}")[0][0] for k, t in  # noqa: S608 - fixed table names
              (("windows", "drift_windows"), ("retrain_requests", "retrain_requests"))}  # fmt: skip
    return {
        "windows": counts["windows"],
        "drift_windows": rows(settings, "SELECT count(*) FROM drift_windows WHERE cardinality(fired) > 0")[0][0],
        "retrain_requests": counts["retrain_requests"],
        "champion_version": first,
        "promoted_version": promoted_version,
        "mae_before": realized_mae(before),
        "mae_after": realized_mae(after),
        "swap_seconds": swap,
        "produced": len(set(produced_ids)),
        "scored": len(scored_ids),
        "dead_lettered": len(set(dead_keys)),
        "lost": len(set(produced_ids) - scored_ids - set(dead_keys)),
        "duplicated": int(pairs) + len(scored_ids & set(dead_keys)),
    }


LIVE_DECISIONS = """
SELECT kind, version, metrics->'live' FROM model_events
WHERE kind IN ('promoted', 'rejected') AND metrics ? 'live' AND metrics->>'role' = 'challenger' ORDER BY id
"""


def live_gate_figures(settings: Settings, promotion: tuple[int, datetime] | None) -> dict[str, Any]:
    """The live gate's decision on the challenger that replaced the champion (else the last one it judged):
    its figures, and whether that promotion was rolled back later."""
    judged = rows(settings, LIVE_DECISIONS)
    chosen = [j for j in judged if promotion and j[1] == promotion[0]] or judged[-1:]
    kind, live = (chosen[0][0], chosen[0][2]) if chosen else (None, {})
    rolled = rows(settings, "SELECT count(*) FROM model_events WHERE kind = 'rolled_back'")[0][0]
    return {"shadow_rows": live.get("rows"), "shadow_mae_champion": live.get("champion_mae"),
            "shadow_mae_challenger": live.get("shadow_mae"), "shadow_ci_high": live.get("ci_high"),
            "live_gate": "rolled_back" if rolled and kind == "promoted" else kind}  # fmt: skip


def onset_to_promotion(settings: Settings, promotion: tuple[int, datetime] | None) -> dict[str, Any]:
    """From the first drifting window's close to the promotion: the windows closed in between (the onset
    window counted) and the seconds."""
    onset = rows(settings, "SELECT min(closed_at) FROM drift_windows WHERE cardinality(fired) > 0")[0][0]
    if onset is None or promotion is None:
        return {"onset_to_promotion_windows": None, "onset_to_promotion_s": None}
    windows = rows(settings, "SELECT count(*) FROM drift_windows WHERE closed_at >= %s AND closed_at <= %s",
                   [onset, promotion[1]])[0][0]  # fmt: skip
    return {"onset_to_promotion_windows": int(windows),
            "onset_to_promotion_s": round((promotion[1] - onset).total_seconds(), 1)}  # fmt: skip


def start_dashboard(settings: Settings, run_paths: Paths) -> str:
    """The dashboard on this world's database; it stays up after the demo (`make down` stops it)."""
    stop_pid("drift-dashboard", run_paths)
    spawn("drift-dashboard", ["-m", "pricemyride_cli", "dashboard"], run_paths)
    url = f"http://{settings.dashboard_host}:{settings.dashboard_port}/"
    log.info("dashboard: %s (drift chart and model history below the live table)", url)
    return url


def run(settings: Settings, old: Path, new: Path, rate: float, limit: int | None, timeout_s: float) -> dict[str, Any]:
    """Train the champion on ``old``, stream ``new``; return the summary once every listing is stored."""
    log.info("training the champion on %s…", old)
    first = train(settings, old).version
    start_loop(settings)
    try:
        log.info("streaming %s in posting order at %.0f listings/s…", new, rate)
        producer = threading.Thread(target=replay, args=(settings, new, rate, limit, "posting_date"),
                                    kwargs={"progress": False}, daemon=True)  # fmt: skip
        producer.start()
        promoted = wait_for(lambda: promoted_after(settings, first) is not None, timeout_s, "a promotion")
        producer.join(timeout=timeout_s)
        produced = topic_keys(settings, settings.listings_topic)
        wait_for(lambda: all_handled(settings, len(set(produced))), 120, "every listing to be stored")
        promotion = promoted_after(settings, first) if promoted else None
        figures = summary(settings, produced, first, promotion)
        return figures | live_gate_figures(settings, promotion) | onset_to_promotion(settings, promotion)
    finally:
        stop_loop(settings)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.demo_drift", description=__doc__.split("\n")[0])
    data = Path(os.environ.get("PRICEMYRIDE_DRIFT_DATA_DIR", "../shared/data"))
    parser.add_argument("--old", type=Path, default=data / "craigslist_2020.csv")
    parser.add_argument("--new", type=Path, default=data / "craigslist_2021.csv")
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    configure_logging()
    name = f"drift-demo-{datetime.now(UTC):%Y%m%d%H%M%S}"
    base = Settings()
    folder = base.state_path / "drift-demo" / name
    # A short cooldown, so a drift that outlives a rejected challenger is retried within the demo.
    os.environ.update(
        world_env(base, name, folder, PRICEMYRIDE_DRIFT_COOLDOWN_S="45", PRICEMYRIDE_DASHBOARD_PORT="8051")
    )
    settings = Settings()
    prepare(settings)
    start_dashboard(settings, Paths(base.state_path))
    result = run(settings, args.old, args.new, args.rate, args.limit, args.timeout)
    print(json.dumps(result), flush=True)
    return 1 if result["lost"] or result["duplicated"] or result["promoted_version"] is None else 0


if __name__ == "__main__":
    sys.exit(main())

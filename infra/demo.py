"""``make demo``: a champion model, a scoring worker, a producer and the dashboard, in the background.

    python -m infra.demo start [--data FILE] [--rate N]
    python -m infra.demo stop

Each process writes a PID file and a log in the state folder; ``make down`` stops them and the services.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from infra.services import APP_PROCESSES, Paths, log, pid_alive, stop_pid, wait_until
from pricemyride.errors import ModelNotFound
from pricemyride.process import configure_logging
from pricemyride.settings import Settings

DEMO_RATE = 20.0


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs: which data feeds the producer and the first model, and how fast."""

    data: Path | None
    rate: float

    @property
    def source(self) -> str:
        return str(self.data) if self.data else "the built-in generator (fitted from real Craigslist listings)"


def spawn(name: str, args: list[str], paths: Paths) -> int:
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
            env=os.environ.copy(),
        )
    paths.pid_file(name).write_text(str(proc.pid))
    return proc.pid


def ensure_champion(settings: Settings, plan: DemoPlan) -> int:
    from training.registry import champion_version, configure
    from training.train import train

    try:
        return champion_version(configure(settings), settings)
    except ModelNotFound:
        log(f"no champion yet: training the first model on {plan.source}…")
        return train(settings, plan.data).version


def dashboard_answers(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"http://{settings.dashboard_host}:{settings.dashboard_port}/", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(settings: Settings, plan: DemoPlan) -> None:
    paths = Paths(settings.state_path)
    version = ensure_champion(settings, plan)
    spawn("worker", ["-m", "stream_workers", "worker", "-l", "info"], paths)
    spawn("monitor", ["-m", "monitoring", "worker", "-l", "info"], paths)
    spawn("retrainer", ["-m", "pricemyride_cli", "retrain-listener"], paths)
    producer = ["-m", "pricemyride_cli", "produce", "--rate", str(plan.rate)]
    spawn("producer", producer + (["--data", str(plan.data), "--order", "posting_date"] if plan.data else []), paths)
    spawn("dashboard", ["-m", "pricemyride_cli", "dashboard"], paths)
    wait_until(lambda: dashboard_answers(settings), "the dashboard", 60)
    url = f"http://{settings.dashboard_host}:{settings.dashboard_port}/"
    print(
        f"""
PriceMyRide demo is running
  dashboard   {url}
  model       {settings.model_name} v{version} (@{settings.champion_alias}), MLflow {settings.tracking_uri}
  listings    {plan.source} → Kafka {settings.kafka_bootstrap} topic '{settings.listings_topic}' at {plan.rate:g}/s
  worker      faust score_listings → Postgres 'predictions' + topic '{settings.predictions_topic}'
  drift       faust monitor_predictions (windows of {settings.drift.window_events:,} predictions) → retrain-listener
  logs        {paths.logs}/  (worker, monitor, retrainer, producer, dashboard, kafka)
  stop        make down
""",
        flush=True,
    )


def stop(settings: Settings) -> None:
    paths = Paths(settings.state_path)
    for name in APP_PROCESSES:
        stop_pid(name, paths, timeout_s=20)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.demo")
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument(
        "--data", type=Path, default=None, help="Craigslist file (default: PRICEMYRIDE_DATA or the generator)"
    )
    parser.add_argument("--rate", type=float, default=DEMO_RATE)
    args = parser.parse_args()
    configure_logging()
    settings = Settings()
    if args.command == "start":
        start(settings, DemoPlan(args.data or settings.data, args.rate))
    else:
        stop(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

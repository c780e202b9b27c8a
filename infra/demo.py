"""``make demo``: a champion model, a scoring worker, a producer, the dashboard and the valuation API, in the
background.

    python -m infra.demo start [--data FILE] [--rate N]
    python -m infra.demo stop

Each process writes a PID file and a log in the state folder; ``make down`` stops them and the services.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from werkzeug.security import generate_password_hash

from api.keys import create_key
from infra import prometheus
from infra.harness import spawn
from infra.services import APP_PROCESSES, Paths, http_answers, log, stop_pid, wait_until
from pricemyride.access import add_site
from pricemyride.errors import ModelNotFound
from pricemyride.process import configure_logging
from pricemyride.settings import Settings
from training.registry import champion_version, configure
from training.train import train

DEMO_RATE = 20.0
METRICS_PORT = 9101  # worker; monitor, retrainer, dashboard and api on the next four ports
DEMO_USER = "analyst"
# name: (command line, Prometheus job)
PROCESSES = {
    "worker": (["-m", "stream_workers", "worker", "-l", "info"], "pricemyride-worker"),
    "monitor": (["-m", "monitoring", "worker", "-l", "info"], "pricemyride-monitor"),
    "retrainer": (["-m", "pricemyride_cli", "retrain-listener"], "pricemyride-retrain-listener"),
    "dashboard": (["-m", "pricemyride_cli", "dashboard"], "pricemyride-dashboard"),
    "api": (["-m", "pricemyride_cli", "api"], "pricemyride-api"),
}
DEMO_SITE = "demo"


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs: which data feeds the producer and the first model, and how fast."""

    data: Path | None
    rate: float
    metrics_port: int = METRICS_PORT

    @property
    def source(self) -> str:
        return str(self.data) if self.data else "the built-in generator (fitted from real Craigslist listings)"


def ensure_champion(settings: Settings, plan: DemoPlan) -> int:
    try:
        return champion_version(configure(settings), settings)
    except ModelNotFound:
        log(f"no champion yet: training the first model on {plan.source}…")
        return train(settings, plan.data).version


def demo_login(paths: Paths) -> Path:
    """The demo's one dashboard login: a random password, kept (owner-only) in the state folder and never
    printed; the dashboard reads only its scrypt hash."""
    login = paths.state / "dashboard-login.txt"
    users = paths.state / "dashboard-users"
    if not (login.is_file() and users.is_file()):
        paths.state.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(18)
        for path, text in ((login, f"user: {DEMO_USER}\npassword: {password}\n"),
                           (users, f"{DEMO_USER}:{generate_password_hash(password)}\n")):  # fmt: skip
            path.touch(mode=0o600)
            path.write_text(text)
    return login


def demo_key(settings: Settings, paths: Paths) -> Path:
    """The demo site's API key, made once and kept (owner-only) in the state folder, never printed; the site
    gets its topics too, so ``?publish=true`` has somewhere to publish."""
    key_file = paths.state / "api-key.txt"
    if not key_file.is_file():
        add_site(settings, DEMO_SITE)
        with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
            key = create_key(conn, DEMO_SITE)
        paths.state.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(key + "\n")
    return key_file


def dashboard_answers(settings: Settings) -> bool:
    """The dashboard is serving: it answers, with the login page (401) or a page."""
    return http_answers(f"http://{settings.dashboard_host}:{settings.dashboard_port}/", also=(401,))


def ready(host: str, port: int) -> bool:
    """A service's /readyz answers 200 (a worker: it holds partitions and a champion)."""
    return http_answers(f"http://{host}:{port}/readyz")


def start_processes(settings: Settings, plan: DemoPlan, paths: Paths) -> dict[str, int]:
    """Spawn the services, each with its metrics port, registered with the local Prometheus; → name: port."""
    ports = {name: plan.metrics_port + i for i, name in enumerate(PROCESSES)}
    login = {
        "PRICEMYRIDE_DASHBOARD_SERVER": "waitress",
        "PRICEMYRIDE_DASHBOARD_USERS_FILE": str(paths.state / "dashboard-users"),
    }
    for name, (args, job) in PROCESSES.items():
        extra = {"PRICEMYRIDE_METRICS_PORT": str(ports[name])} | (login if name == "dashboard" else {})
        spawn(name, args, paths, extra)
        prometheus.register(paths, job, f"demo-{name}", f"{settings.metrics_host}:{ports[name]}")
    producer = ["-m", "pricemyride_cli", "produce", "--rate", str(plan.rate)]
    spawn("producer", producer + (["--data", str(plan.data), "--order", "posting_date"] if plan.data else []), paths)
    return ports


def start(settings: Settings, plan: DemoPlan) -> None:
    paths = Paths(settings.state_path)
    version = ensure_champion(settings, plan)
    login, key_file = demo_login(paths), demo_key(settings, paths)
    ports = start_processes(settings, plan, paths)
    wait_until(lambda: dashboard_answers(settings), "the dashboard", 60)
    wait_until(lambda: ready(settings.api_host, settings.api_port), "the valuation API (/readyz)", 90)
    wait_until(lambda: ready(settings.metrics_host, ports["worker"]), "the scoring worker (/readyz)", 90)
    url = f"http://{settings.dashboard_host}:{settings.dashboard_port}/"
    metrics = ", ".join(f"{name} :{port}" for name, port in ports.items())
    print(
        f"""
PriceMyRide demo is running
  dashboard   {url}  (login: user '{DEMO_USER}', password in {login})
  api         http://{settings.api_host}:{settings.api_port}/v1/valuations  (site '{DEMO_SITE}', key in {key_file})
  model       {settings.model_name} v{version} (@{settings.champion_alias}), MLflow {settings.tracking_uri}
  listings    {plan.source} → Kafka {settings.kafka_bootstrap} topic '{settings.listings_topic}' at {plan.rate:g}/s
  worker      faust score_listings → Postgres 'predictions' + topic '{settings.predictions_topic}'
  drift       faust monitor_predictions (windows of {settings.drift.window_events:,} predictions) → retrain-listener
  metrics     http://{settings.metrics_host}:PORT/metrics  ({metrics}; health: /livez, /readyz)
  prometheus  {settings.prometheus_url}/classic/targets  (alerts: {settings.prometheus_url}/classic/alerts)
  logs        {paths.logs}/  (worker, monitor, retrainer, producer, dashboard, api, kafka, prometheus)
  stop        make down
""",
        flush=True,
    )


def stop(settings: Settings) -> None:
    paths = Paths(settings.state_path)
    for name in APP_PROCESSES:
        stop_pid(name, paths, timeout_s=20)
    for name, (_, job) in PROCESSES.items():
        prometheus.unregister(paths, job, f"demo-{name}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.demo")
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument(
        "--data", type=Path, default=None, help="Craigslist file (default: PRICEMYRIDE_DATA or the generator)"
    )
    parser.add_argument("--rate", type=float, default=DEMO_RATE)
    parser.add_argument("--metrics-port", type=int, default=METRICS_PORT, help="the worker's; the others follow")
    args = parser.parse_args()
    configure_logging()
    settings = Settings()
    if args.command == "start":
        start(settings, DemoPlan(args.data or settings.data, args.rate, args.metrics_port))
    else:
        stop(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

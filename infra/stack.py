"""Start, stop and inspect the local stack without Docker: Apache Kafka (KRaft), PostgreSQL and Prometheus.

    python -m infra up | down | status

Idempotent: ``up`` starts only what is not already answering, and returns once each service really
answers (Kafka: a metadata request; Postgres: a query). PID files and logs live in the state folder.
MLflow needs no server locally: tracking and registry are a sqlite file in the state folder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from infra import prometheus
from infra.kafka_cluster import admin_login, brokers_answering, start_kafka, stop_kafka
from infra.services import (
    APP_PROCESSES,
    Paths,
    log,
    pg_answers,
    pg_params,
    pid_alive,
    start_postgres,
    stop_pid,
    stop_postgres,
)
from pricemyride.bootstrap import prepare
from pricemyride.settings import Settings


def up(settings: Settings, paths: Paths) -> None:
    for folder in (paths.run, paths.logs):
        folder.mkdir(parents=True, exist_ok=True)
    start_kafka(settings, paths)
    start_postgres(settings, paths)
    prometheus.start(settings, paths)

    prepare(settings)
    log(
        f"ready: kafka {settings.kafka_bootstrap}, postgres {pg_params(settings).get('host')}:"
        f"{pg_params(settings).get('port', '5432')}, mlflow {settings.tracking_uri}, "
        f"prometheus {settings.prometheus_url}"
    )


def down(paths: Paths) -> None:
    for name in APP_PROCESSES:
        stop_pid(name, paths, timeout_s=20)
    for target in (paths.state / "prometheus" / "targets").glob("*/*.json"):
        target.unlink()  # the stopped processes: a stale target would keep its down-alert firing
    stop_pid("prometheus", paths, timeout_s=30)
    stop_kafka(paths)
    stop_postgres(paths)


def status(settings: Settings, paths: Paths) -> int:
    rows = {
        "kafka": brokers_answering(settings.kafka_bootstrap, admin_login(settings)) == settings.kafka_brokers,
        "postgres": pg_answers(settings),
        "prometheus": prometheus.answers(settings),
    }
    for name in APP_PROCESSES:
        rows[name] = pid_alive(paths.pid_file(name)) is not None
    for name, ok in rows.items():
        print(f"{name:10} {'up' if ok else 'down'}")
    return 0 if rows["kafka"] and rows["postgres"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    settings = Settings()
    paths = Paths(settings.state_path)
    if args.command == "up":
        up(settings, paths)
    elif args.command == "down":
        down(paths)
    else:
        return status(settings, paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())

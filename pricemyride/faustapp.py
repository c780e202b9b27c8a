"""The one way our faust apps are built: brokers and credentials from Settings, no web server, no leader topic,
the data folder under the state folder (faust's default is ``<app id>-data`` in the working directory)."""

from __future__ import annotations

from typing import Any

import faust

from pricemyride.kafka import faust_credentials
from pricemyride.settings import Settings


def faust_app(settings: Settings, role: str, **options: Any) -> faust.App:
    """A faust app named ``<consumer group>-<role>``; ``options`` add to (or override) the shared ones."""
    app_id = f"{settings.consumer_group}-{role}"
    datadir = settings.state_path / "faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    shared: dict[str, Any] = {
        "datadir": str(datadir),
        "broker": [f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        "broker_credentials": faust_credentials(settings),
        "topic_allow_declare": False,
        "web_enabled": False,
    }
    return faust.App(app_id, **(shared | options))


def without_web(argv: list[str]) -> list[str]:
    """faust's worker command starts a web server on 6066 unless told not to; ours serve no web pages."""
    if len(argv) > 1 and argv[1] == "worker" and not any(a in {"--with-web", "--without-web"} for a in argv):
        return [*argv, "--without-web"]
    return argv

"""The one way our faust apps are built: brokers and credentials from Settings, no web server, no leader topic."""

from __future__ import annotations

from typing import Any

import faust

from pricemyride.kafka import faust_credentials
from pricemyride.settings import Settings


def faust_app(settings: Settings, role: str, **options: Any) -> faust.App:
    """A faust app named ``<consumer group>-<role>``; ``options`` add to (or override) the shared ones."""
    shared: dict[str, Any] = {
        "broker": [f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        "broker_credentials": faust_credentials(settings),
        "topic_allow_declare": False,
        "web_enabled": False,
    }
    return faust.App(f"{settings.consumer_group}-{role}", **(shared | options))


def without_web(argv: list[str]) -> list[str]:
    """faust's worker command starts a web server on 6066 unless told not to; ours serve no web pages."""
    if len(argv) > 1 and argv[1] == "worker" and not any(a in {"--with-web", "--without-web"} for a in argv):
        return [*argv, "--without-web"]
    return argv

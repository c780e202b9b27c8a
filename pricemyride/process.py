"""What every PriceMyRide process does the same way: quiet libraries, one log format, leave at once."""

from __future__ import annotations

import logging
import os
from typing import NoReturn

QUIET_LOGGERS = ("mlflow", "alembic", "urllib3", "kafka", "git", "httpx", "matplotlib")
log = logging.getLogger("pricemyride")


def quiet_libraries() -> None:
    """No telemetry from MLflow or Prefect: this system talks to no host but its own services."""
    for key, value in (("MLFLOW_DISABLE_TELEMETRY", "true"), ("DO_NOT_TRACK", "true"),
                       ("PREFECT_SERVER_ANALYTICS_ENABLED", "false")):  # fmt: skip
        os.environ.setdefault(key, value)


def configure_logging() -> None:
    quiet_libraries()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # kafka-python warns on every SASL_PLAINTEXT login; SCRAM sends no password, and production refuses
    # SASL_PLAINTEXT (Settings), so on the local stack the warning is noise.
    logging.getLogger("kafka.net.sasl.scram").setLevel(logging.ERROR)


def exit_now(message: str, code: int) -> NoReturn:
    """Log ``message`` and leave at once, without faust's shutdown: nothing in hand gets acked or committed,
    so Kafka redelivers it to whoever owns the partition next."""
    log.critical(message)
    logging.shutdown()
    os._exit(code)

"""docker-compose.yml's Kafka nodes as broker properties: the apache/kafka image turns ``KAFKA_A_B`` into
``a.b`` (``__`` → ``_``, ``___`` → ``-``). The deployment tests compare these with the local launcher's, and
tests/integration/test_kafka_tls.py starts a real broker from them."""

from __future__ import annotations

import re
from typing import Any

IMAGE_ONLY = frozenset({"CLUSTER_ID"})  # read by the image's start script, not a broker property


def property_name(variable: str) -> str:
    """``KAFKA_LISTENER_NAME_SASL__SSL_X`` → ``listener.name.sasl_ssl.x``."""
    name = variable.removeprefix("KAFKA_").lower()
    return re.sub(r"_+", lambda m: {1: ".", 2: "_", 3: "-"}.get(len(m[0]), m[0]), name)


def broker_properties(env: dict[str, Any]) -> dict[str, str]:
    """The broker properties a compose Kafka node's environment sets."""
    return {property_name(k): str(v).replace("$$", "$") for k, v in env.items() if k.startswith("KAFKA_")}

"""docker-compose.yml's Kafka node, run for real: a broker started from kafka-1's environment (the image's
KAFKA_* → property rule; only addresses, folders and replication made local) with the TLS material
`pricemyride make-secrets` writes. The admin gets in by its certificate and makes the principals; a service
logs in with SCRAM over TLS (kafka-python and aiokafka, as the workers do) and is held to its ACLs; a client
without TLS or without a login gets nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaProducer
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from pydantic import SecretStr

from infra.compose_kafka import broker_properties
from infra.services import Paths, java_cmd, port_open, resolve_kafka_jars, wait_until
from pricemyride.access import API, PRODUCER, ROLES, WORKER, ensure_roles
from pricemyride.kafka import aiokafka_options, kafka_python_options
from pricemyride.secrets_dir import make_secrets
from pricemyride.settings import Settings
from pricemyride.topics import ensure_topics
from tests.integration.helpers import free_port, may_write

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KAFKA_1 = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["kafka-1"]["environment"]


def local_properties(folder: Path, secrets: Path, ports: dict[str, int]) -> dict[str, str]:
    """kafka-1's properties with this machine's addresses, folder, secrets and one replica."""
    config = broker_properties(KAFKA_1)
    config = {k: v.replace("/run/secrets/", f"{secrets}/") for k, v in config.items()}
    config |= {k: "1" for k, v in config.items() if k.endswith(("replication.factor", "min.isr", "insync.replicas"))}
    listeners = ",".join(f"{name}://localhost:{port}" for name, port in ports.items())
    return config | {
        "listeners": listeners, "log.dirs": str(folder / "data"),
        "advertised.listeners": ",".join(f"{n}://localhost:{p}" for n, p in ports.items() if n != "CONTROLLER"),
        "controller.quorum.voters": f"1@localhost:{ports['CONTROLLER']}",
    }  # fmt: skip


@pytest.fixture(scope="module")
def broker(services: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("kafka-tls")
    secrets = folder / "secrets"
    make_secrets(secrets)
    ports = {"SASL_SSL": free_port(), "BROKER": free_port(), "CONTROLLER": free_port()}
    config = folder / "server.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in local_properties(folder, secrets, ports).items()))
    paths = Paths((ROOT / ".state").resolve())
    resolve_kafka_jars(paths)
    cluster_id = str(KAFKA_1["CLUSTER_ID"]).split(":-")[-1].rstrip("}")  # compose's default
    format_cmd = java_cmd(
        paths, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), "--ignore-formatted"
    )
    subprocess.run(format_cmd, check=True, stdout=subprocess.DEVNULL)
    with (folder / "kafka.log").open("wb") as out:
        proc = subprocess.Popen(java_cmd(paths, "kafka.Kafka", str(config)), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: port_open("localhost", ports["SASL_SSL"]) or proc.poll() is not None, "tls broker", 60)
        assert proc.poll() is None, (folder / "kafka.log").read_text()[-3000:]
        yield {"ports": ports, "secrets": secrets, "log": folder / "kafka.log"}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def admin(broker: dict[str, Any]) -> Settings:
    """`prepare` as compose runs it: mutual TLS on the BROKER listener with the admin's certificate."""
    secrets = broker["secrets"]
    return Settings(kafka_bootstrap=f"localhost:{broker['ports']['BROKER']}", kafka_security_protocol="SSL",
                    kafka_ssl_cafile=secrets / "kafka_ca.pem",
                    kafka_ssl_certfile=secrets / "kafka_admin.pem")  # fmt: skip


def service(broker: dict[str, Any], user: str, password: str | None = None) -> Settings:
    """A service as compose runs it: SCRAM over TLS on 9092's listener, verifying the brokers' certificate."""
    secrets = broker["secrets"]
    secret = SecretStr(password or (secrets / "kafka" / user).read_text().strip())
    return Settings(kafka_bootstrap=f"localhost:{broker['ports']['SASL_SSL']}", kafka_security_protocol="SASL_SSL",
                    kafka_sasl_mechanism="SCRAM-SHA-256", kafka_sasl_username=user, kafka_sasl_password=secret,
                    kafka_ssl_cafile=secrets / "kafka_ca.pem")  # fmt: skip


def sent(settings: Settings, topic: str) -> bool:
    return may_write(kafka_python_options(settings), topic)


def test_the_compose_broker_takes_scram_over_tls_and_holds_each_principal_to_its_acls(broker: dict[str, Any]) -> None:
    root = admin(broker)
    assert set(ensure_topics(root)) >= {root.listings_topic, root.model_updates_topic}
    assert sorted(ensure_roles(root, broker["secrets"] / "kafka")) == sorted(ROLES)
    producer = service(broker, PRODUCER)
    assert sent(producer, producer.listings_topic)
    assert not sent(producer, producer.model_updates_topic)
    api = service(broker, API)  # the valuation API writes only the topics of sites added after it
    assert not sent(api, api.listings_topic)

    async def worker_publishes() -> None:  # aiokafka, the workers' client, with the same TLS context
        out = AIOKafkaProducer(**aiokafka_options(service(broker, WORKER)), acks="all")
        await out.start()
        try:
            await out.send_and_wait(root.predictions_topic, b"{}")
        finally:
            await out.stop()

    asyncio.run(worker_publishes())


def test_no_tls_or_no_login_gets_nothing(broker: dict[str, Any]) -> None:
    address = f"localhost:{broker['ports']['SASL_SSL']}"
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_servers=address, max_block_ms=1500, api_version=(3, 0)).send("listings", b"{}").get(5)
    wrong = service(broker, PRODUCER, password="not-the-password-at-all")
    producer = KafkaProducer(**kafka_python_options(wrong), max_block_ms=1500, api_version=(3, 0))
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send(wrong.listings_topic, b"{}").get(timeout=5)
    finally:
        producer.close(timeout=0)
    with pytest.raises(KafkaError):  # the BROKER listener: no certificate, no entry
        KafkaProducer(**kafka_python_options(admin(broker).model_copy(update={"kafka_ssl_certfile": None})),
                      max_block_ms=1500, api_version=(3, 0)).send("listings", b"{}").get(5)  # fmt: skip

"""A local Apache Kafka in KRaft mode from the Maven jars: one node, or a cluster of several on loopback.

Every node is broker and controller; the controller quorum is every node. Broker ports sit side by side
(9092, 9093, 9094) and each controller listens 1,000 above its broker (10092, …). A cluster of three
replicates every topic, the internal ones too, three times with ``min.insync.replicas=2`` and unclean
leader election off (``server.properties.template``). Chaos scenarios and tests start clusters of their own
on other ports and folders with the same class.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from infra.services import (
    INFRA,
    Paths,
    java_cmd,
    kafka_jvm_options,
    log,
    pid_alive,
    port_open,
    resolve_kafka_jars,
    stop_pid,
    wait_until,
)
from pricemyride.settings import Settings

CONTROLLER_PORT_OFFSET = 1000
Login = tuple[str, str]  # (user, password)
DEV_ADMIN: Login = ("pricemyride-admin", "pricemyride-dev")  # the local stack's default; refused in production
SCRAM_MARKER = ".scram"  # a node folder formatted with its SCRAM users


@dataclass(frozen=True)
class KafkaNode:
    """One broker-and-controller process: its id, ports, folder and PID/log name."""

    node_id: int
    host: str
    port: int
    folder: Path
    name: str

    @property
    def controller_port(self) -> int:
        return self.port + CONTROLLER_PORT_OFFSET

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class KafkaCluster:
    """``size`` nodes on ``host`` from ``first_port`` on, their files under ``paths.state``."""

    paths: Paths
    host: str
    first_port: int
    size: int
    admin: Login = DEV_ADMIN  # the super user: inter-broker traffic, and the one who grants the others

    @classmethod
    def from_settings(cls, settings: Settings, paths: Paths) -> KafkaCluster:
        host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
        return cls(paths, host or "127.0.0.1", int(port), settings.kafka_brokers, admin_login(settings))

    @property
    def folder(self) -> Path:
        return self.paths.kafka if self.size == 1 else self.paths.state / f"kafka-{self.size}"

    @property
    def nodes(self) -> list[KafkaNode]:
        if self.size == 1:
            return [KafkaNode(1, self.host, self.first_port, self.folder, "kafka")]
        return [KafkaNode(i, self.host, self.first_port + i - 1, self.folder / f"node-{i}", f"kafka-{i}")
                for i in range(1, self.size + 1)]  # fmt: skip

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def start(self) -> None:
        """Start every node not running and wait until the cluster has all its brokers (idempotent)."""
        found = brokers_answering(self.bootstrap, self.admin)
        if found == self.size:
            log(f"kafka already answering on {self.bootstrap} ({found} broker(s))")
            return
        if found and not any(pid_alive(self.paths.pid_file(n.name)) for n in self.nodes):
            raise SystemExit(f"[infra] expected a {self.size}-broker Kafka on {self.bootstrap}, found {found} "
                             "broker(s) of another cluster answering there; `make down` first")  # fmt: skip
        resolve_kafka_jars(self.paths)
        for node in self.nodes:
            if pid_alive(self.paths.pid_file(node.name)) is None:
                self.launch(node)
        log(f"kafka starting, waiting for {self.size} broker(s) on {self.bootstrap}…")
        self.wait_complete(120)
        log("kafka is up")

    def wait_complete(self, timeout_s: float) -> None:
        wait_until(lambda: brokers_answering(self.bootstrap, self.admin) == self.size, "kafka", timeout_s)

    def launch(self, node: KafkaNode) -> None:
        """Format the node's log folder if new and start its process (no wait)."""
        config = self.write_config(node)
        self.format(config)
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        with (self.paths.logs / f"{node.name}.log").open("ab") as out:
            proc = subprocess.Popen(
                java_cmd(self.paths, *kafka_jvm_options(self.paths, node.name), "kafka.Kafka", str(config)),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.paths.run.mkdir(parents=True, exist_ok=True)
        self.paths.pid_file(node.name).write_text(str(proc.pid))
        log(f"{node.name} starting (pid {proc.pid}) on {node.address}")

    def write_config(self, node: KafkaNode) -> Path:
        replication = min(self.size, 3)
        node.folder.mkdir(parents=True, exist_ok=True)
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes)
        text = (INFRA / "kafka" / "server.properties.template").read_text().format(
            node_id=node.node_id, voters=voters, host=node.host, port=node.port,
            controller_port=node.controller_port, log_dir=node.folder / "data", replication=replication,
            min_isr=2 if replication >= 3 else 1, admin=self.admin[0], admin_password=self.admin[1],
        )  # fmt: skip
        config = node.folder / "server.properties"
        config.touch(mode=0o600)  # it holds the admin's password
        config.write_text(text)
        return config

    def format(self, config: Path) -> None:
        cluster_file = self.folder / "cluster.id"
        if not cluster_file.exists():
            out = subprocess.run(java_cmd(self.paths, "kafka.tools.StorageTool", "random-uuid"), check=True,
                                 capture_output=True, text=True)  # fmt: skip
            cluster_file.write_text(out.stdout.strip().splitlines()[-1])
        cluster_id = cluster_file.read_text().strip()
        data = config.parent / "data"
        if (data / "meta.properties").exists() and not (config.parent / SCRAM_MARKER).exists():
            raise SystemExit(
                f"[infra] {data} was formatted before Kafka asked for logins (SCRAM users are "
                "made at format time): `make clean` deletes local state, or delete the folder"
            )
        scram = f"SCRAM-SHA-256=[name={self.admin[0]},password={self.admin[1]}]"
        subprocess.run(
            java_cmd(self.paths, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config),
                     "--ignore-formatted", "--add-scram", scram),
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        (config.parent / SCRAM_MARKER).touch()

    def stop_node(self, node: KafkaNode, timeout_s: float = 60) -> None:
        """SIGTERM: a controlled shutdown (leadership moves first), as Kafka's own stop script does."""
        stop_pid(node.name, self.paths, timeout_s=timeout_s)

    def kill_node(self, node: KafkaNode) -> None:
        """SIGKILL: the node vanishes mid-write, as on a power cut."""
        pid = pid_alive(self.paths.pid_file(node.name))
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while pid_alive(self.paths.pid_file(node.name)):
                time.sleep(0.1)
        self.paths.pid_file(node.name).unlink(missing_ok=True)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            self.stop_node(node)


def admin_login(settings: Settings) -> Login:
    """The settings' Kafka login, the local clusters' super user (``make up`` formats the brokers with it)."""
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    return settings.kafka_sasl_username or DEV_ADMIN[0], password or DEV_ADMIN[1]


def brokers_answering(bootstrap: str, login: Login = DEV_ADMIN) -> int:
    """How many brokers the cluster's metadata lists (0 when none answers a metadata request)."""
    addresses = bootstrap.split(",")
    if not any(port_open(*split_address(a)) for a in addresses):
        return 0
    try:
        admin = KafkaAdminClient(bootstrap_servers=addresses, request_timeout_ms=3000,
                                 security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                                 sasl_plain_username=login[0], sasl_plain_password=login[1])  # fmt: skip
    except (KafkaError, OSError, ValueError):
        return 0
    try:
        return len(admin.describe_cluster()["brokers"])
    except (KafkaError, OSError):
        return 0
    finally:
        admin.close()


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def start_kafka(settings: Settings, paths: Paths) -> None:
    KafkaCluster.from_settings(settings, paths).start()


def stop_kafka(paths: Paths) -> None:
    """Every local Kafka node this state folder started, whatever the cluster's size."""
    for pid_file in sorted(paths.run.glob("kafka*.pid"), reverse=True):
        stop_pid(pid_file.stem, paths, timeout_s=60)

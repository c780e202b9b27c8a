"""docker-compose.yml and the Dockerfile checked statically (this machine has no Docker engine)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.compose_kafka import broker_properties
from pricemyride.settings import Settings, described
from pricemyride_cli.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
CLI_COMMANDS = set(COMMANDS)


def settings_env_names() -> set[str]:
    """Every variable Settings reads, and its ``_FILE`` form (the value from a secret file)."""
    names = {f"PRICEMYRIDE_{name.upper()}" for name, _ in described(Settings())}
    return names | {f"{name}_FILE" for name in names}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_pricemyride_variable_is_a_settings_field(name: str) -> None:
    env = SERVICES[name].get("environment", {})
    unknown = {k for k in env if k.startswith("PRICEMYRIDE_")} - settings_env_names()
    assert not unknown, f"{name}: not a Settings field: {unknown}"


def test_dependencies_exist_and_have_health_or_completion_checks() -> None:
    for name, service in SERVICES.items():
        for dep, rule in service.get("depends_on", {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep}, which has no healthcheck"


def test_app_services_run_real_cli_commands() -> None:
    for name, service in SERVICES.items():
        command = service.get("command")
        if isinstance(command, list) and command[0] == "pricemyride":
            assert command[1] in CLI_COMMANDS, f"{name}: unknown command {command[1]}"


def test_secrets_have_no_defaults() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("PREFECT_AUTH_STRING", "GRAFANA_ADMIN_PASSWORD", "DASHBOARD_USERS_FILE", "TRUSTED_PROXY"):
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses, f"{secret} is not used"
        assert all(u.startswith(":?") for u in uses), f"{secret} must be required (${{{secret}:?…}})"


@pytest.mark.parametrize(("service", "variable"), [("dashboard", "DASHBOARD_PORT"), ("api", "API_PORT")])
def test_published_ports_match_their_settings(service: str, variable: str) -> None:
    port = str(SERVICES[service]["environment"][f"PRICEMYRIDE_{variable}"])
    assert f"{port}:{port}" in SERVICES[service]["ports"]


def pins(lock: str) -> dict[str, str]:
    lines = (ROOT / lock).read_text().splitlines()
    return dict(line.split(" ")[0].split("==") for line in lines if re.match(r"^[a-z0-9_.-]+==", line))


def test_image_installs_the_runtime_lock_by_hash_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.prod.lock" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    production, development = pins("requirements.prod.lock"), pins("requirements.lock")
    assert {"faust-streaming", "xgboost-cpu", "mlflow", "psycopg", "flask-wtf"} <= set(production)
    assert not {"pytest", "selenium", "hypothesis", "ruff", "mypy", "import-linter"} & set(production)
    assert {name: development.get(name) for name in production} == production  # the versions the tests ran
    blocks = (ROOT / "requirements.prod.lock").read_text().split("\n\n")[0].split("==")[1:]
    assert all("--hash=sha256:" in block for block in blocks)


def test_every_image_is_pinned_by_digest() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE$", dockerfile, re.MULTILINE)
    assert re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE) == ["${PYTHON_IMAGE}"]
    images = {name: s.get("image") for name, s in SERVICES.items() if "build" not in s}
    images["build"] = SERVICES["worker"]["build"]["args"]["PYTHON_IMAGE"]
    variables = {}
    for name, image in images.items():
        found = re.fullmatch(r"\$\{([A-Z_]+):\?pin (\S+) by digest \(deploy/pin-images.sh\)\}", str(image))
        assert found, f"{name}: expected an image pinned by digest (a required variable), got {image}"
        variables[found[1]] = found[2]
    script = (ROOT / "deploy" / "pin-images.sh").read_text()
    for variable, tag in variables.items():
        assert f"[{variable}]={tag}" in script, variable
        assert f"\n{variable}=" in (ROOT / ".env.example").read_text(), variable


def test_retrain_listener_runs_the_deployment_the_prefect_worker_serves() -> None:
    deploy = SERVICES["prefect-deploy"]["command"]
    name = deploy[deploy.index("--name") + 1]
    pool = SERVICES["prefect-deploy"]["environment"]["PRICEMYRIDE_PREFECT_WORK_POOL"]
    assert SERVICES["retrain-listener"]["environment"]["PRICEMYRIDE_RETRAIN_DEPLOYMENT"] == f"retrain/{name}"
    worker = SERVICES["prefect-worker"]["command"]
    assert worker[:3] == ["prefect", "worker", "start"]
    assert worker[worker.index("--pool") + 1] == pool
    assert worker[worker.index("--type") + 1] == "process"
    for service in ("prefect-deploy", "prefect-worker", "retrain-listener"):
        assert SERVICES[service]["environment"]["PREFECT_API_URL"].startswith("http://prefect:4200/")


def test_flow_runs_read_the_same_training_files_as_the_listener() -> None:
    assert SERVICES["prefect-worker"]["volumes"] == SERVICES["retrain-listener"]["volumes"]


def required(value: object) -> bool:
    """A compose value that is a ${VARIABLE:?…} with no default: compose refuses to start without it."""
    return isinstance(value, str) and re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value) is not None


def dashboard_logs_in(service: dict[str, Any]) -> bool:
    env = service.get("environment", {})
    users_file = str(env.get("PRICEMYRIDE_DASHBOARD_USERS_FILE", ""))
    return (env.get("PRICEMYRIDE_ENVIRONMENT") == "production" and users_file.startswith("/run/secrets/")
            and users_file.rsplit("/", 1)[-1] in service.get("secrets", []))  # fmt: skip


def grafana_logs_in(service: dict[str, Any]) -> bool:
    env = service.get("environment", {})
    return (env.get("GF_AUTH_ANONYMOUS_ENABLED") == "false" and env.get("GF_USERS_ALLOW_SIGN_UP") == "false"
            and required(env.get("GF_SECURITY_ADMIN_PASSWORD")))  # fmt: skip


def api_asks_for_keys(service: dict[str, Any]) -> bool:
    """The valuation API checks a key on every /v1 route, always; in production its docs are off too."""
    env = service.get("environment", {})
    return service.get("command") == ["pricemyride", "api"] and env.get("PRICEMYRIDE_ENVIRONMENT") == "production"


# How each service that may be published asks for a login; any other published service is a finding.
LOGINS = {"dashboard": dashboard_logs_in, "grafana": grafana_logs_in, "api": api_asks_for_keys}


def published_without_login(services: dict[str, Any]) -> list[str]:
    return [name for name, service in services.items()
            if service.get("ports") and not (name in LOGINS and LOGINS[name](service))]  # fmt: skip


def test_no_service_is_reachable_from_outside_without_a_login() -> None:
    assert published_without_login(SERVICES) == []
    assert {name for name, service in SERVICES.items() if service.get("ports")} == {"dashboard", "grafana", "api"}


def test_the_check_finds_a_published_service_without_a_login() -> None:
    exposed = SERVICES | {"prefect": SERVICES["prefect"] | {"ports": ["4200:4200"]}}
    anonymous = SERVICES | {"grafana": SERVICES["grafana"] | {"environment": {"GF_AUTH_ANONYMOUS_ENABLED": "true"}}}
    open_dashboard = SERVICES | {"dashboard": SERVICES["dashboard"] | {"secrets": []}}
    assert published_without_login(exposed) == ["prefect"]
    assert published_without_login(anonymous) == ["grafana"]
    assert published_without_login(open_dashboard) == ["dashboard"]


def test_the_prefect_api_asks_every_client_for_the_same_required_auth_string() -> None:
    server = SERVICES["prefect"]["environment"]["PREFECT_SERVER_API_AUTH_STRING"]
    assert required(server)
    clients = [name for name, service in SERVICES.items() if "PREFECT_API_URL" in service.get("environment", {})]
    assert set(clients) == {"prefect-deploy", "prefect-worker", "retrain-listener"}
    for name in clients:
        assert SERVICES[name]["environment"]["PREFECT_API_AUTH_STRING"] == server, name


def test_long_running_app_services_are_health_checked_on_their_readiness() -> None:
    for name in ("worker", "monitor", "retrain-listener", "dashboard"):
        probe = " ".join(SERVICES[name]["healthcheck"]["test"])
        port = SERVICES[name]["environment"]["PRICEMYRIDE_METRICS_PORT"]
        assert f"localhost:{port}/readyz" in probe, name
        assert SERVICES[name]["environment"]["PRICEMYRIDE_METRICS_HOST"] == "0.0.0.0", name


def test_grafana_and_prometheus_mount_files_that_exist() -> None:
    for name in ("prometheus", "grafana"):
        for volume in SERVICES[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"


# --- the Kafka cluster: compose, the local launcher, topic creation and the clients agree ---------------

KAFKA_NODES = {name: s for name, s in SERVICES.items() if name.startswith("kafka-")}
DURABILITY_KEYS = (
    "default.replication.factor", "min.insync.replicas", "unclean.leader.election.enable",
    "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr", "transaction.partition.verification.enable",
)  # fmt: skip


def compose_broker_config(env: dict[str, Any]) -> dict[str, str]:
    return broker_properties(env)


def local_broker_config(size: int) -> dict[str, str]:
    """What infra/kafka_cluster.py writes for node 1 of a local cluster of ``size``."""
    import tempfile

    from infra.kafka_cluster import KafkaCluster
    from infra.services import Paths

    with tempfile.TemporaryDirectory() as folder:
        cluster = KafkaCluster(Paths(Path(folder)), "127.0.0.1", 19092, size)
        lines = cluster.write_config(cluster.nodes[0]).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_compose_runs_a_three_node_quorum_every_client_knows() -> None:
    env = SERVICES["worker"]["environment"]
    assert len(KAFKA_NODES) == int(env["PRICEMYRIDE_KAFKA_BROKERS"]) == 3
    assert env["PRICEMYRIDE_KAFKA_BOOTSTRAP"].split(",") == [f"{name}:9092" for name in sorted(KAFKA_NODES)]
    voters = {s["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for s in KAFKA_NODES.values()}
    assert voters == {",".join(f"{s['environment']['KAFKA_NODE_ID']}@{n}:9093" for n, s in sorted(KAFKA_NODES.items()))}
    assert len({s["environment"]["CLUSTER_ID"] for s in KAFKA_NODES.values()}) == 1
    for name, service in KAFKA_NODES.items():
        assert service["environment"]["KAFKA_ADVERTISED_LISTENERS"] == f"SASL_SSL://{name}:9092,BROKER://{name}:9094"
        assert service["volumes"][0] == f"{name}-data:{service['environment']['KAFKA_LOG_DIRS']}"
        assert "healthcheck" in service
    for app in ("worker", "prepare"):
        assert set(KAFKA_NODES) <= set(SERVICES[app]["depends_on"])


def test_compose_brokers_have_the_durability_of_the_local_cluster() -> None:
    local = local_broker_config(3)
    for name, service in KAFKA_NODES.items():
        compose = compose_broker_config(service["environment"])
        assert {k: compose.get(k) for k in DURABILITY_KEYS} == {k: local[k] for k in DURABILITY_KEYS}, name


def test_topics_and_clients_ask_what_the_brokers_are_configured_for() -> None:
    from pricemyride.topics import topic_configs

    settings = Settings(kafka_brokers=3, kafka_bootstrap="kafka-1:9092,kafka-2:9092,kafka-3:9092")
    compose = compose_broker_config(KAFKA_NODES["kafka-1"]["environment"])
    assert settings.replication_factor == int(compose["default.replication.factor"]) == 3
    assert topic_configs(settings) == {"min.insync.replicas": compose["min.insync.replicas"],
                                       "unclean.leader.election.enable": "false"}  # fmt: skip
    assert SERVICES["worker"]["environment"]["PRICEMYRIDE_PROCESSING_GUARANTEE"] == "exactly_once"


def test_one_local_address_and_three_brokers_means_three_ports_side_by_side() -> None:
    settings = Settings(kafka_brokers=3, kafka_bootstrap="127.0.0.1:9092")
    assert settings.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    single = Settings(kafka_brokers=1)
    assert (single.replication_factor, single.min_insync_replicas) == (1, 1)
    assert local_broker_config(1)["min.insync.replicas"] == "1"

"""docker-compose.yml read as an attacker inside the network would: each service mounts exactly the secrets its
job needs, logs in to Kafka, Postgres and MLflow as its own role, and the environment it is given passes the
production Settings checks (secrets resolved from files that `pricemyride make-secrets` writes)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from infra.compose_kafka import broker_properties
from pricemyride.access import API, MONITOR, PRODUCER, ROLES, TRAINER, WORKER
from pricemyride.secrets_dir import make_secrets
from pricemyride.settings import Settings
from training.registry import REGISTRY_USERS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
TRAINER_SECRETS = {"kafka_ca.pem", "trainer_database_url", "kafka_trainer_password", "mlflow_trainer_password"}
NEEDS: dict[str, set[str]] = {
    "prepare": {"kafka_ca.pem", "kafka_admin.pem", "owner_database_url", "mlflow_admin_password",
                "kafka_worker_password", "kafka_monitor_password", "kafka_trainer_password",
                "kafka_producer_password", "kafka_api_password", "mlflow_trainer_password", "mlflow_reader_password"},
    "api": {"kafka_ca.pem", "reader_database_url", "kafka_api_password", "mlflow_reader_password"},
    "worker": {"kafka_ca.pem", "writer_database_url", "kafka_worker_password", "mlflow_reader_password"},
    "monitor": {"kafka_ca.pem", "writer_database_url", "kafka_monitor_password", "mlflow_reader_password"},
    "retrain-listener": TRAINER_SECRETS,
    "prefect-worker": TRAINER_SECRETS,
    "dashboard": {"dashboard_users", "reader_database_url", "mlflow_reader_password"},
    "producer": {"kafka_ca.pem", "kafka_producer_password"},
    "mlflow": {"mlflow_backend_uri", "mlflow_admin_password", "mlflow_flask_secret"},
    "postgres": {"postgres_password", "owner_db_password", "writer_db_password", "trainer_db_password",
                 "reader_db_password", "mlflow_db_password"},
} | {f"kafka-{n}": {"kafka_broker.pem", "kafka_ca.pem", "kafka_admin.pem"} for n in (1, 2, 3)}  # fmt: skip
# Who logs in as whom: (Kafka principal, Postgres role, MLflow user); None: no login there at all.
LOGINS = {
    "prepare": (None, "pricemyride_owner", "admin"),  # Kafka: the admin's client certificate
    "worker": (WORKER, "pricemyride_writer", REGISTRY_USERS[1]),
    "monitor": (MONITOR, "pricemyride_writer", REGISTRY_USERS[1]),
    "retrain-listener": (TRAINER, "pricemyride_trainer", REGISTRY_USERS[0]),
    "prefect-worker": (TRAINER, "pricemyride_trainer", REGISTRY_USERS[0]),
    "dashboard": (None, None, REGISTRY_USERS[1]),
    "producer": (PRODUCER, None, None),
    "api": (API, None, REGISTRY_USERS[1]),
    "prefect-deploy": (None, None, None),
}


def mounted(service: dict[str, Any]) -> dict[str, str]:
    """secret name → where the service sees it."""
    out = {}
    for entry in service.get("secrets", []):
        source, target = (entry, entry) if isinstance(entry, str) else (entry["source"], entry.get("target", ""))
        out[source] = target if target.startswith("/") else f"/run/secrets/{target or source}"
    return out


def excess(services: dict[str, Any]) -> dict[str, set[str]]:
    """Per service, the secrets it mounts beyond what its job needs."""
    found = {name: set(mounted(s)) - NEEDS.get(name, set()) for name, s in services.items()}
    return {name: extra for name, extra in found.items() if extra}


def test_each_service_mounts_only_the_secrets_its_job_needs() -> None:
    assert excess(SERVICES) == {}
    assert {name: set(mounted(s)) for name, s in SERVICES.items() if name in NEEDS} == NEEDS


def test_the_check_finds_a_secret_given_where_it_is_not_needed() -> None:
    leaky = SERVICES | {"dashboard": SERVICES["dashboard"] | {"secrets": [*SERVICES["dashboard"]["secrets"],
                                                                          "writer_database_url"]}}  # fmt: skip
    assert excess(leaky) == {"dashboard": {"writer_database_url"}}


DOTENV = {"TRUSTED_PROXY": "10.0.0.2"}  # what an operator's .env gives the required variables used here


def interpolated(value: object) -> str:
    """Compose's ${VAR:-default} and ${VAR:?message} as a deployment with DOTENV would read them."""
    return re.sub(r"\$\{([A-Z_]+):([-?])([^}]*)\}", lambda m: DOTENV.get(m[1], m[3] if m[2] == "-" else ""), str(value))


def resolved_env(service: dict[str, Any], secrets_dir: Path) -> dict[str, str]:
    """The service's PRICEMYRIDE_ variables with each /run/secrets path turned into the made file."""
    where = {target: name for name, target in mounted(service).items()}
    files = {name: secrets_dir / spec["file"].removeprefix("./secrets/")
             for name, spec in COMPOSE["secrets"].items() if spec["file"].startswith("./secrets/")}  # fmt: skip
    files["dashboard_users"] = secrets_dir / "dashboard-users"
    env = {}
    for key, value in service.get("environment", {}).items():
        text = interpolated(value)
        if text.startswith("/run/secrets/"):
            assert text in where or any(t.startswith(text + "/") for t in where), f"{key}: {text} is not mounted"
            text = str(files[where[text]]) if text in where else str(secrets_dir / text.rsplit("/", 1)[-1])
        env[key] = text
    return env


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    make_secrets(folder)
    (folder / "dashboard-users").write_text("analyst:scrypt:32768:8:1$x$y\n")
    return folder


def test_make_secrets_writes_every_file_compose_mounts(secrets_dir: Path) -> None:
    for name, spec in COMPOSE["secrets"].items():
        if spec["file"].startswith("./secrets/"):
            assert (secrets_dir / spec["file"].removeprefix("./secrets/")).is_file(), name
            assert (secrets_dir / spec["file"].removeprefix("./secrets/")).stat().st_mode & 0o077 == 0, name


@pytest.mark.parametrize("name", sorted(LOGINS))
def test_each_service_logs_in_as_its_own_role_and_passes_production_checks(
    name: str, secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("PRICEMYRIDE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(secrets_dir)  # no .env of the repository
    for key, value in resolved_env(SERVICES[name], secrets_dir).items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # the production validators run: placeholders, PLAINTEXT and missing logins refused
    kafka, role, registry_user = LOGINS[name]
    assert settings.environment == "production"
    assert (settings.kafka_sasl_username if "PRICEMYRIDE_KAFKA_SASL_USERNAME" in SERVICES[name].get(
        "environment", {}) else None) == kafka  # fmt: skip
    url = settings.database_url if "database_url" in settings.model_fields_set else None
    if name in ("dashboard", "api"):
        url = settings.reader_database_url
        role = "pricemyride_reader"
        assert "database_url" not in settings.model_fields_set  # the writer's URL is not in its environment
    assert (conninfo_to_dict(url.get_secret_value())["user"] if url else None) == role
    assert settings.mlflow_username == registry_user


def test_kafka_principals_in_compose_are_the_roles_the_acls_are_made_for() -> None:
    used = {s["environment"].get("PRICEMYRIDE_KAFKA_SASL_USERNAME") for s in SERVICES.values()
            if isinstance(s.get("environment"), dict)} - {None}  # fmt: skip
    assert used == set(ROLES)
    targets = {Path(t).name for t in mounted(SERVICES["prepare"]).values() if "/kafka/" in t}
    assert targets == set(ROLES)  # prepare makes a login and ACLs for each


def test_brokers_accept_only_encrypted_logins_and_authorize_every_request() -> None:
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        config = broker_properties(SERVICES[name]["environment"])
        protocols = {entry.split(":")[1] for entry in config["listener.security.protocol.map"].split(",")}
        assert protocols == {"SASL_SSL", "SSL"}, name
        assert config["allow.everyone.if.no.acl.found"] == "false"
        assert config["authorizer.class.name"].endswith("StandardAuthorizer")
        assert config["super.users"] == "User:kafka-broker;User:pricemyride-admin"
        assert config["listener.name.broker.ssl.client.auth"] == "required"
        assert config["listener.name.controller.ssl.client.auth"] == "required"
    envs = {n: s["environment"] for n, s in SERVICES.items() if isinstance(s.get("environment"), dict)}
    clients = {
        n: e.get("PRICEMYRIDE_KAFKA_SECURITY_PROTOCOL") for n, e in envs.items() if "PRICEMYRIDE_KAFKA_BOOTSTRAP" in e
    }
    assert set(clients.values()) == {"SASL_SSL", "SSL"}
    assert [n for n, protocol in clients.items() if protocol == "SSL"] == ["prepare"]  # the admin, by certificate


def test_the_dashboard_cookie_is_secure_and_its_proxy_named() -> None:
    env = SERVICES["dashboard"]["environment"]
    assert env["PRICEMYRIDE_DASHBOARD_SECURE_COOKIE"] == "true"
    assert env["PRICEMYRIDE_DASHBOARD_TRUSTED_PROXY"].startswith("${TRUSTED_PROXY:?")
    assert not [k for k in env if k.startswith("PRICEMYRIDE_KAFKA_")]

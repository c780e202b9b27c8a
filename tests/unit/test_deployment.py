"""docker-compose.yml and the Dockerfile checked statically (this machine has no Docker engine)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pricemyride.settings import Settings, described
from pricemyride_cli.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
CLI_COMMANDS = set(COMMANDS)


def settings_env_names() -> set[str]:
    return {f"PRICEMYRIDE_{name.upper()}" for name, _ in described(Settings())}


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
    for secret in ("POSTGRES_PASSWORD", "READER_PASSWORD"):
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses, f"{secret} is not used"
        assert all(u.startswith(":?") for u in uses), f"{secret} must be required (${{{secret}:?…}})"


def test_dashboard_port_matches_its_settings() -> None:
    dashboard = SERVICES["dashboard"]
    port = str(dashboard["environment"]["PRICEMYRIDE_DASHBOARD_PORT"])
    assert f"{port}:{port}" in dashboard["ports"]


def test_image_installs_the_pinned_requirements_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-r requirements.lock" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    pinned = {line.split("==")[0] for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line}
    assert {"faust-streaming", "xgboost-cpu", "mlflow", "psycopg"} <= pinned


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
    assert "4200:4200" in SERVICES["prefect"]["ports"]


def test_flow_runs_read_the_same_training_files_as_the_listener() -> None:
    assert SERVICES["prefect-worker"]["volumes"] == SERVICES["retrain-listener"]["volumes"]

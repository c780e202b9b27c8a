"""The alert rules, the Prometheus configs and the Grafana board, checked against promtool and the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import api.metrics
import dashboard.login
import dashboard.serving
import monitoring.metrics
import retrainer.metrics
import stream_workers.metrics
from infra.prometheus import JOBS, config_text
from infra.services import Paths
from pricemyride.ops import PREFIX, exported_names

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
BOARD = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "pricemyride.json").read_text())
RULES = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
METRIC = re.compile(rf"\b{PREFIX}[a-z_]+\b")
SERVICE_MODULES = (
    stream_workers.metrics,
    monitoring.metrics,
    retrainer.metrics,
    dashboard.serving,
    dashboard.login,
    api.metrics,
)  # registered


def promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    binary = shutil.which("promtool")
    assert binary, "expected promtool on PATH (Debian's prometheus package; scripts/system-deps.sh installs it)"
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def board_queries() -> list[str]:
    return [target["expr"] for panel in BOARD["panels"] for target in panel["targets"]]


def rule_queries() -> list[str]:
    return [rule["expr"] for group in RULES["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    assert "SUCCESS: 14 rules found" in promtool("check", "rules", "alerts.yml")


def test_every_alert_fires_on_its_story_and_not_on_its_near_miss() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


def test_every_alert_has_a_unit_test_and_a_runbook_entry() -> None:
    tests = (PROMETHEUS / "alerts.test.yml").read_text()
    operations = (ROOT / "OPERATIONS.md").read_text()
    for group in RULES["groups"]:
        for rule in group["rules"]:
            assert f"alertname: {rule['alert']}" in tests, f"{rule['alert']} has no promtool test"
            assert f"`{rule['alert']}`" in operations, f"{rule['alert']} is not explained in OPERATIONS.md"


def test_promtool_accepts_the_compose_and_the_local_prometheus_configs(tmp_path: Path) -> None:
    promtool("check", "config", "prometheus.yml")
    local = tmp_path / "prometheus.yml"
    local.write_text(config_text(Paths(tmp_path)))
    assert "SUCCESS" in promtool("check", "config", str(local), cwd=tmp_path)


def test_the_board_and_the_rules_query_only_metrics_the_code_exports() -> None:
    exported = exported_names()
    queried = {name for query in board_queries() + rule_queries() for name in METRIC.findall(query)}
    assert queried, "no pricemyride metric is queried"
    assert queried <= exported, f"queried but never exported: {sorted(queried - exported)}"


def test_the_board_shows_what_an_operator_watches() -> None:
    queries = " ".join(board_queries())
    for metric in ("listings_scored_total", "produced_to_stored_seconds_bucket", "consumer_lag_messages",
                   "listings_dead_lettered_total", "drift_share_ratio", "model_version", "window_mae_dollars",
                   "retrain_runs_total"):  # fmt: skip
        assert PREFIX + metric in queries, f"the board has no panel on {metric}"


def our_metrics() -> dict[str, str]:
    """name as queried (a counter with its _total) → type, for every pricemyride metric the code defines."""
    return {family.name + ("_total" if family.type == "counter" else ""): family.type
            for family in REGISTRY.collect() if family.name.startswith(PREFIX)}  # fmt: skip


def test_every_metric_is_documented_and_named_by_convention() -> None:
    operations = (ROOT / "OPERATIONS.md").read_text()
    metrics = our_metrics()
    assert len(metrics) >= 25
    for name, kind in metrics.items():
        assert f"`{name}`" in operations, f"{name} is not in OPERATIONS.md"
        assert re.fullmatch(r"pricemyride_[a-z_]+", name), name
        assert not name.endswith(("_ms", "_milliseconds", "_percent", "_minutes")), f"{name}: expected base units"
        if kind == "histogram" and "seconds" not in name:
            pytest.fail(f"{name}: a histogram of durations is named *_seconds")


def test_compose_prometheus_scrapes_every_service_job_on_the_metrics_port() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    jobs = {job["job_name"]: job["dns_sd_configs"][0] for job in config["scrape_configs"]}
    assert set(jobs) == set(JOBS)
    for job, sd in jobs.items():
        service = compose[sd["names"][0]]
        assert str(service["environment"]["PRICEMYRIDE_METRICS_PORT"]) == str(sd["port"]), job
        assert "9100/readyz" in " ".join(service["healthcheck"]["test"]), f"{job}: no readiness healthcheck"

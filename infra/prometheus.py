"""A local Prometheus server (Debian's ``prometheus`` package), started like Kafka and Postgres.

It loads the production alert rules (``deploy/prometheus/alerts.yml``) and finds what to scrape in
target files — one JSON file per process under ``<state>/prometheus/targets/<job>/`` — which the demo and
the tests write as they start a service (``register``) and delete as they stop it. Prometheus watches
those folders, so a new target is scraped within seconds, without a reload.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from pathlib import Path

from infra.services import Paths, http_answers, log, wait_until
from pricemyride.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
JOBS = ("pricemyride-worker", "pricemyride-monitor", "pricemyride-retrain-listener", "pricemyride-dashboard",
        "pricemyride-api")  # fmt: skip
SCRAPE_S = 5  # local: every 5 s (compose: 15 s), so an alert's `for:` dominates how soon it fires


def folder(paths: Paths) -> Path:
    return paths.state / "prometheus"


def listen_address(settings: Settings) -> str:
    parts = urllib.parse.urlsplit(settings.prometheus_url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 9090}"


def config_text(paths: Paths) -> str:
    """prometheus.yml: the rules, and one scrape job per service reading its target files."""
    jobs = [{"job_name": job, "file_sd_configs": [{"files": [str(folder(paths) / "targets" / job / "*.json")]}]}
            for job in JOBS]  # fmt: skip
    config = {
        "global": {
            "scrape_interval": f"{SCRAPE_S}s",
            "evaluation_interval": f"{SCRAPE_S}s",
            "scrape_timeout": f"{SCRAPE_S - 1}s",
        },
        "rule_files": [str(RULES)],
        "scrape_configs": jobs,
    }
    return json.dumps(config, indent=2)  # JSON is YAML


def answers(settings: Settings) -> bool:
    return http_answers(f"http://{listen_address(settings)}/-/ready")


def start(settings: Settings, paths: Paths) -> None:
    """Start Prometheus unless it answers already; return once it is ready."""
    if answers(settings):
        log(f"prometheus already answering on {settings.prometheus_url}")
        return
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("[infra] expected Prometheus on PATH (Debian: apt-get install prometheus), found none")
    for job in JOBS:
        (folder(paths) / "targets" / job).mkdir(parents=True, exist_ok=True)
    config = folder(paths) / "prometheus.yml"
    config.write_text(config_text(paths))
    args = [binary, f"--config.file={config}", f"--storage.tsdb.path={folder(paths) / 'data'}",
            f"--web.listen-address={listen_address(settings)}", "--storage.tsdb.retention.time=2d"]  # fmt: skip
    for needed in (paths.logs, paths.run):
        needed.mkdir(parents=True, exist_ok=True)
    with (paths.logs / "prometheus.log").open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    paths.pid_file("prometheus").write_text(str(proc.pid))
    wait_until(lambda: proc.poll() is None and answers(settings), "prometheus", 60)
    log(f"prometheus is up on {settings.prometheus_url}")


def target_file(paths: Paths, job: str, name: str) -> Path:
    if job not in JOBS:
        raise ValueError(f"expected a job of {JOBS}, got {job!r}")
    return folder(paths) / "targets" / job / f"{name}.json"


def register(paths: Paths, job: str, name: str, address: str) -> Path:
    """Have Prometheus scrape ``address`` (host:port of an ops server) as ``job``, instance ``name``."""
    path = target_file(paths, job, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps([{"targets": [address], "labels": {"service": name}}]))
    temporary.replace(path)  # Prometheus never reads half a file
    return path


def unregister(paths: Paths, job: str, name: str) -> None:
    target_file(paths, job, name).unlink(missing_ok=True)

"""What the dashboard reads from MLflow: registered versions with their figures, and the champion model.

Both are cached for ``ttl_s`` so a page refresh costs no registry round trip; the champion is loaded
again only when the alias points at another version.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.artifacts import load_dict
from mlflow.exceptions import MlflowException

from pricemyride.errors import IncompatibleModel, ModelLoadFailed, ModelNotFound
from pricemyride.settings import Settings
from training.contracts import QUALITY_SLICES, VERSION_TAG_GATE, VERSION_TAG_GATE_REASON
from training.registry import LoadedModel, champion_version, configure, load_version, require_crowned

log = logging.getLogger(__name__)
FIGURES = ("mae", "rmse", "r2", "coverage")  # of contracts.HELD_OUT_METRICS, the ones the Models page shows


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version as the Models page shows it."""

    version: int
    aliases: tuple[str, ...]
    created: datetime
    source: str
    gate: str
    gate_reason: str
    figures: dict[str, float]
    run_id: str = ""


def list_versions(client: MlflowClient, settings: Settings) -> list[VersionInfo]:
    """Every version of the model, newest first, with its held-out figures from its training run."""
    found = client.search_model_versions(f"name = '{settings.model_name}'")
    if not found:
        return []
    aliases: dict[int, list[str]] = {}
    for alias, version in client.get_registered_model(settings.model_name).aliases.items():
        aliases.setdefault(int(version), []).append(alias)
    versions = []
    for mv in found:
        metrics: dict[str, float] = {}
        source = ""
        if mv.run_id:
            run = client.get_run(mv.run_id)
            metrics = {k: float(v) for k, v in run.data.metrics.items() if k in FIGURES}
            source = run.data.params.get("data", "")
        versions.append(
            VersionInfo(
                version=int(mv.version),
                aliases=tuple(sorted(aliases.get(int(mv.version), []))),
                created=datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, tz=UTC),
                source=source,
                gate=str(mv.tags.get(VERSION_TAG_GATE, "")),
                gate_reason=str(mv.tags.get(VERSION_TAG_GATE_REASON, "")),
                figures=metrics,
                run_id=mv.run_id or "",
            )
        )
    return sorted(versions, key=lambda v: v.version, reverse=True)


class RegistryView:
    """Cached reads of the registry, safe to share between the dashboard's request threads.

    The version list is served from memory; once older than ``ttl_s`` it is refreshed in the background
    while pages keep getting the previous list, so no page waits on the registry after the first load."""

    def __init__(self, settings: Settings, ttl_s: float = 15.0) -> None:
        self.settings = settings
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._versions: tuple[float, list[VersionInfo]] | None = None
        self._champion: tuple[float, LoadedModel] | None = None
        self._slices: dict[str, list[dict[str, Any]]] = {}

    def _client(self) -> MlflowClient:
        return configure(self.settings)

    def refresh_versions(self) -> list[VersionInfo]:
        """Read the version list from the registry now (one reader at a time); [] if it cannot be read."""
        with self._refreshing:
            try:
                found = list_versions(self._client(), self.settings)
            except MlflowException as exc:
                log.warning("cannot list model versions: %s", exc)
                return self._versions[1] if self._versions else []
            self._versions = (time.monotonic(), found)
            return found

    def warm(self) -> None:
        """Load the version list in the background (the dashboard calls this at start)."""
        threading.Thread(target=self.refresh_versions, name="registry-warm", daemon=True).start()

    def versions(self) -> list[VersionInfo]:
        cached = self._versions
        if cached is None:
            return self.refresh_versions()
        if time.monotonic() - cached[0] > self.ttl_s and not self._refreshing.locked():
            threading.Thread(target=self.refresh_versions, name="registry-refresh", daemon=True).start()
        return cached[1]

    def champion(self) -> LoadedModel:
        """The champion model; raises ``ModelNotFound`` or ``IncompatibleModel`` with the reason."""
        with self._lock:
            now = time.monotonic()
            if self._champion is not None and now - self._champion[0] <= self.ttl_s:
                return self._champion[1]
            client = self._client()
            version = champion_version(client, self.settings)
            if self._champion is None or self._champion[1].version != version:
                require_crowned(self.settings, version, self.settings.reader_database_url.get_secret_value())
                self._champion = (now, load_version(client, self.settings, version))
            else:
                self._champion = (now, self._champion[1])
            return self._champion[1]

    def champion_or_reason(self) -> tuple[LoadedModel | None, str]:
        try:
            return self.champion(), ""
        except (ModelNotFound, IncompatibleModel, ModelLoadFailed) as exc:
            return None, str(exc)

    def slices(self, run_id: str) -> list[dict[str, Any]]:
        """A version's per-slice figures on its held-out part, as its training run logged them (runs never
        change, so each is read once); [] when the run has none (older versions) or cannot be read."""
        if run_id and run_id not in self._slices:
            try:
                found = load_dict(f"runs:/{run_id}/{QUALITY_SLICES}").get("slices", [])
            except (MlflowException, OSError) as exc:
                log.info("no per-slice figures for run %s: %s", run_id, exc)
                return []
            self._slices[run_id] = list(found)
        return self._slices.get(run_id, [])

    def known_values(self) -> dict[str, Any]:
        """The categories the champion was trained with (for the form's suggestions); empty without one."""
        loaded, _ = self.champion_or_reason()
        if loaded is None:
            return {}
        return dict(getattr(loaded.model.features_, "categories_", {}))

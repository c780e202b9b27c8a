"""MLflow tracking and the model registry: where models are logged, and how the champion is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pricemyride.errors import IncompatibleModel, ModelLoadFailed, ModelNotFound
from pricemyride.settings import Settings, redacted
from training.features import MODEL_FORMAT

NOT_FOUND = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})  # no such model, no such alias


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version loaded into memory."""

    version: int
    model: Any
    run_id: str


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the settings' tracking URI and make sure the experiment exists."""
    if settings.mlflow_tracking_uri is None:
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient()
    if client.get_experiment_by_name(settings.mlflow_experiment) is None:
        client.create_experiment(settings.mlflow_experiment, artifact_location=settings.artifact_root.as_uri())
    mlflow.set_experiment(settings.mlflow_experiment)
    return client


def champion_version(client: MlflowClient, settings: Settings) -> int:
    try:
        found = client.get_model_version_by_alias(settings.model_name, settings.champion_alias)
    except MlflowException as exc:
        if exc.error_code not in NOT_FOUND:  # the registry failed: not the same as "no champion"
            raise ModelLoadFailed(
                f"{settings.model_name}@{settings.champion_alias}: expected an answer from "
                f"{redacted(settings.tracking_uri)}, got {exc.error_code}: {str(exc)[:200]}"
            ) from exc
        raise ModelNotFound(
            f"expected a model version behind {settings.model_name}@{settings.champion_alias}, "
            f"found none in {redacted(settings.tracking_uri)}; run `pricemyride train` first"
        ) from exc
    return int(found.version)


def load_version(client: MlflowClient, settings: Settings, version: int) -> LoadedModel:
    try:
        found = client.get_model_version(settings.model_name, str(version))
        model = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")
    except Exception as exc:
        raise ModelLoadFailed(
            f"{settings.model_name} version {version}: expected a loadable model from "
            f"{redacted(settings.tracking_uri)}, got {type(exc).__name__}: {str(exc)[:300]}"
        ) from exc
    built_with = getattr(getattr(model, "features_", None), "model_format_", None)
    if built_with != MODEL_FORMAT:
        raise IncompatibleModel(
            f"{settings.model_name} version {version}: expected model format {MODEL_FORMAT}, "
            f"got {built_with}; retrain it with this code (pricemyride train)"
        )
    return LoadedModel(version=version, model=model, run_id=str(found.run_id))


def load_champion(settings: Settings) -> LoadedModel:
    """Resolve the champion alias once, then load exactly that version."""
    client = configure(settings)
    return load_version(client, settings, champion_version(client, settings))


def log_sources(settings: Settings, version: int, figures: dict[str, Any]) -> None:
    """Per-source counts and errors of a retrain, as ``sources.json`` on the run that made ``version``."""
    client = configure(settings)
    run_id = client.get_model_version(settings.model_name, str(version)).run_id
    client.log_dict(str(run_id), figures, "sources.json")

"""MLflow tracking and the model registry: where models are logged, and how the champion is loaded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import psycopg
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pricemyride.errors import IncompatibleModel, ModelLoadFailed, ModelNotFound, UncrownedModel
from pricemyride.settings import Settings, redacted
from training.features import MODEL_FORMAT

# The gate's record: every promotion (train, the retrain flow's gate, `pricemyride promote`, a rollback) writes
# this row in the same transaction that moves the alias (training.promotion). Only the trainer role may insert.
LAST_PROMOTED = """
SELECT version FROM model_events WHERE kind = 'promoted' AND metrics->>'model' = %s ORDER BY id DESC LIMIT 1
"""
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
    log_in(settings)
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient()
    if client.get_experiment_by_name(settings.mlflow_experiment) is None:
        client.create_experiment(settings.mlflow_experiment, artifact_location=settings.artifact_root.as_uri())
    mlflow.set_experiment(settings.mlflow_experiment)
    return client


def log_in(settings: Settings) -> None:
    """Hand the MLflow login to MLflow's client, which reads it from its own environment variables."""
    if settings.mlflow_username and settings.mlflow_password:
        os.environ["MLFLOW_TRACKING_USERNAME"] = settings.mlflow_username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = settings.mlflow_password.get_secret_value()


REGISTRY_USERS = ("pricemyride-trainer", "pricemyride-reader")  # the one writer (training), everyone else


def ensure_registry_users(settings: Settings, logins_dir: Path) -> list[str]:
    """As the MLflow admin: create each user whose password file is in ``logins_dir``, or set its password
    (how it is rotated). The server's default permission is READ; the trainer creates the model, so it alone
    may register versions and move aliases."""
    from mlflow.exceptions import RestException
    from mlflow.server.auth.client import AuthServiceClient

    log_in(settings)
    client, made = AuthServiceClient(settings.tracking_uri), []
    for user in REGISTRY_USERS:
        if not (logins_dir / user).is_file():
            continue
        password = (logins_dir / user).read_text(encoding="utf-8").strip()
        try:
            client.create_user(user, password)
        except RestException:  # it exists: the file's password is the one that counts
            client.update_user_password(user, password)
        made.append(user)
    return made


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


def load_champion(settings: Settings, database_url: str | None = None) -> LoadedModel:
    """Resolve the champion alias once, check the gate crowned that version, then load exactly it."""
    client = configure(settings)
    version = champion_version(client, settings)
    require_crowned(settings, version, database_url)
    return load_version(client, settings, version)


def last_promoted(settings: Settings, database_url: str | None = None) -> int | None:
    """The version the gate last promoted, as ``model_events`` records it (None: no promotion yet)."""
    url = database_url or settings.database_url.get_secret_value()
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute(LAST_PROMOTED, [settings.model_name]).fetchone()
    except psycopg.Error as exc:
        raise ModelLoadFailed(f"{settings.model_name}: expected the promotion record from Postgres, got "
                              f"{type(exc).__name__}; not loading a model it cannot vouch for") from None  # fmt: skip
    return int(row[0]) if row else None


def require_crowned(settings: Settings, version: int, database_url: str | None = None) -> None:
    """Refuse (``UncrownedModel``) a version the gate did not promote last: an alias moved by hand in the
    registry, or a forged ``model-updates`` event, never reaches a worker or the dashboard."""
    recorded = last_promoted(settings, database_url)
    if recorded != version:
        raise UncrownedModel(
            f"{settings.model_name} version {version}: expected the version the gate last promoted "
            f"({recorded if recorded is not None else 'none recorded'}, model_events), got {version}; not loading "
            "it (moved outside `pricemyride promote`, or announced by a forged model-updates event)"
        )


def log_sources(settings: Settings, version: int, figures: dict[str, Any]) -> None:
    """Per-source counts and errors of a retrain, as ``sources.json`` on the run that made ``version``."""
    client = configure(settings)
    run_id = client.get_model_version(settings.model_name, str(version)).run_id
    client.log_dict(str(run_id), figures, "sources.json")

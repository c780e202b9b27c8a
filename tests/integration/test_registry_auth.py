"""A real MLflow server behind its basic-auth app, configured as production's (deploy/mlflow/basic_auth.ini), its
users made as `pricemyride prepare` makes them: the trainer registers and crowns a version, a reader reads it
but may neither register a version nor move or delete an alias, and a client without a login gets nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import SecretStr

from infra.harness import mlflow_server
from pricemyride.settings import Settings
from tests.integration.conftest import RUN_ID
from tests.integration.helpers import free_port
from training.registry import REGISTRY_USERS, ensure_registry_users, log_in

pytestmark = pytest.mark.integration
TRAINER, READER = REGISTRY_USERS


def as_user(settings: Settings, user: str | None, password: str | None) -> Settings:
    return settings.model_copy(update={"mlflow_username": user, "mlflow_password": password and SecretStr(password)})


def crowned_by(trainer: Settings, text_artifact: Path) -> int:
    """As the trainer: a run, the registered model, a version of it and @champion (what training does, without
    the training: the rights are the subject here; test_crown holds the gate's record)."""
    log_in(trainer)
    client = MlflowClient(trainer.tracking_uri)
    experiment = client.create_experiment(trainer.mlflow_experiment)
    run = client.create_run(experiment)
    client.log_artifact(run.info.run_id, str(text_artifact))
    client.create_registered_model(trainer.model_name)
    version = client.create_model_version(trainer.model_name, f"runs:/{run.info.run_id}/{text_artifact.name}",
                                          run.info.run_id)  # fmt: skip
    client.set_registered_model_alias(trainer.model_name, trainer.champion_alias, version.version)
    return int(version.version)


@pytest.fixture(scope="module")
def registry(services: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Settings]]:
    """The server and its users, made by `prepare`'s step as MLflow's admin; a version crowned by the trainer."""
    folder, port = tmp_path_factory.mktemp("registry-auth"), free_port()
    admin_password = secrets.token_urlsafe(16)
    with pytest.MonkeyPatch.context() as patch, mlflow_server(folder / "mlflow", port, admin_password):
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # a refusal is an answer: no minutes of retries
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT"):
            patch.delenv(name, raising=False)
        base = Settings(mlflow_tracking_uri=f"http://127.0.0.1:{port}", model_name=f"auth{RUN_ID}")
        logins = folder / "logins"
        logins.mkdir()
        passwords = {user: secrets.token_urlsafe(16) for user in REGISTRY_USERS}
        for user, password in passwords.items():
            (logins / user).write_text(password)
        assert ensure_registry_users(as_user(base, "admin", admin_password), logins) == list(REGISTRY_USERS)
        worlds = {user: as_user(base, user, password) for user, password in passwords.items()} | {"nobody": base}
        (folder / "model.txt").write_text("a stand-in for a model")
        assert crowned_by(worlds[TRAINER], folder / "model.txt") == 1
        yield worlds


def test_the_reader_reads_the_champion_but_cannot_crown_or_register(registry: dict[str, Settings]) -> None:
    reader = registry[READER]
    log_in(reader)
    client = MlflowClient(reader.tracking_uri)
    champion = client.get_model_version_by_alias(reader.model_name, reader.champion_alias)
    assert champion.version == "1"
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied"):
        client.set_registered_model_alias(reader.model_name, reader.champion_alias, champion.version)
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied"):
        client.create_model_version(reader.model_name, champion.source, champion.run_id)
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied"):
        client.delete_registered_model_alias(reader.model_name, reader.champion_alias)


def test_a_client_without_a_login_gets_nothing(registry: dict[str, Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    nobody = registry["nobody"]
    with pytest.raises(MlflowException, match=r"401|Unauthorized|credentials"):
        MlflowClient(nobody.tracking_uri).get_registered_model(nobody.model_name)

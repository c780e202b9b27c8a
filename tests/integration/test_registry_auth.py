"""A real MLflow server behind its basic-auth app, configured as production's: the trainer registers and crowns
a model through the gate, a reader loads the champion but may neither register a version nor move an alias,
and a client without a login gets nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import SecretStr

from infra.chaos import mlflow_server
from pricemyride.bootstrap import prepare
from pricemyride.settings import Settings
from tests.conftest import isolated_env
from tests.integration.conftest import RUN_ID
from tests.integration.helpers import free_port
from training.model import TrainParams
from training.registry import REGISTRY_USERS, ensure_registry_users, load_champion, log_in
from training.train import train

pytestmark = pytest.mark.integration
TRAINER, READER = REGISTRY_USERS


def as_user(settings: Settings, user: str | None, password: str | None) -> Settings:
    return settings.model_copy(update={"mlflow_username": user, "mlflow_password": password and SecretStr(password)})


@pytest.fixture(scope="module")
def registry(services: None, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Settings]]:
    """The server, its users made by `prepare`'s step, and one model trained and crowned by the trainer."""
    folder, port = tmp_path_factory.mktemp("registry-auth"), free_port()
    admin_password = secrets.token_urlsafe(16)
    with pytest.MonkeyPatch.context() as patch, mlflow_server(folder / "mlflow", port, admin_password):
        env = isolated_env(
            f"reg{RUN_ID}", folder, free_port(), PRICEMYRIDE_MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}"
        )
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("PRICEMYRIDE_MLFLOW_ARTIFACT_ROOT", raising=False)
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            patch.delenv(name, raising=False)
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # a refusal is an answer: no minutes of retries
        base = Settings()
        prepare(base)
        logins = folder / "logins"
        logins.mkdir()
        passwords = {user: secrets.token_urlsafe(16) for user in REGISTRY_USERS}
        for user, password in passwords.items():
            (logins / user).write_text(password)
        assert ensure_registry_users(as_user(base, "admin", admin_password), logins) == list(REGISTRY_USERS)
        worlds = {user: as_user(base, user, password) for user, password in passwords.items()} | {"nobody": base}
        trained = train(
            worlds[TRAINER], data_dir / "craigslist_2021.csv", limit=6000, params=TrainParams(max_rounds=150)
        )
        assert trained.promoted
        yield worlds


def test_the_reader_loads_the_champion_but_cannot_crown_or_register(registry: dict[str, Settings]) -> None:
    reader = registry[READER]
    champion = load_champion(reader)
    log_in(reader)
    client = MlflowClient(reader.tracking_uri)
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied"):
        client.set_registered_model_alias(reader.model_name, reader.champion_alias, str(champion.version))
    source = client.get_model_version(reader.model_name, str(champion.version)).source
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|Permission denied"):
        client.create_model_version(reader.model_name, source)


def test_a_client_without_a_login_gets_nothing(registry: dict[str, Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    nobody = registry["nobody"]
    with pytest.raises(MlflowException, match=r"401|Unauthorized|credentials"):
        MlflowClient(nobody.tracking_uri).get_registered_model(nobody.model_name)

"""Only the gate crowns a model: a registered version that `promote()` never recorded is refused by the
running worker when a forged model-updates event names it, and by every loader when the alias is moved to it
by hand in the real registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaProducer
from mlflow import MlflowClient

from pricemyride.errors import UncrownedModel
from pricemyride.events import ModelUpdate
from pricemyride.kafka import kafka_python_options
from pricemyride.settings import Settings
from tests.integration.helpers import wait_for
from training.model import TrainParams
from training.promotion import model_update
from training.registry import configure, load_champion, require_crowned
from training.train import train

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def uncrowned(settings: Settings, champion: int, data_dir: Path) -> int:
    """A second registered version, never promoted (the challenger)."""
    return train(settings, data_dir / "craigslist_2021.csv", limit=1500, params=TrainParams(max_rounds=20),
                 promote=False).version  # fmt: skip


def test_a_forged_model_update_is_refused_and_the_worker_keeps_its_champion(
    settings: Settings, worker: Path, champion: int, uncrowned: int
) -> None:
    forged: ModelUpdate = model_update(settings, uncrowned, "forged: nobody's gate")
    producer = KafkaProducer(**kafka_python_options(settings), acks="all")
    producer.send(settings.model_updates_topic, value=forged.model_dump_json().encode()).get(timeout=10)
    producer.close()
    refusal = f"cannot load version {uncrowned} (UncrownedModel"
    wait_for(lambda: refusal in worker.read_text(), 30, "the worker's refusal")
    assert f"hot swap: version {champion} → {uncrowned}" not in worker.read_text()
    require_crowned(settings, champion)  # the champion itself still passes


def test_an_alias_moved_by_hand_is_refused_by_every_loader(settings: Settings, champion: int, uncrowned: int) -> None:
    client: MlflowClient = configure(settings)
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, str(uncrowned))
    try:
        with pytest.raises(UncrownedModel, match=f"expected the version the gate last promoted \\({champion}"):
            load_champion(settings)  # the worker's start-up and `pricemyride predict`
        with pytest.raises(UncrownedModel):  # the dashboard reads the record with the reader role
            load_champion(settings, settings.reader_database_url.get_secret_value())
    finally:
        client.set_registered_model_alias(settings.model_name, settings.champion_alias, str(champion))
    assert load_champion(settings).version == champion

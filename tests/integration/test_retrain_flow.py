"""The Prefect `retrain` flow in-process (temporary Prefect server) on a registry and database of its own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pricemyride.settings import Settings
from tests.integration.helpers import query
from training.flow import retrain

pytestmark = pytest.mark.integration


def events(settings: Settings, version: int, since: datetime) -> list[tuple[str, str]]:
    """Decisions about ``version`` recorded since ``since`` (other tests' registries also have a version 1)."""
    statement = "SELECT kind, reason FROM model_events WHERE version = %s AND at >= %s ORDER BY at"
    return [(r[0], r[1]) for r in query(settings, statement, [version, since])]


def test_retrain_promotes_a_first_model_then_gates_a_challenger(
    own_registry: Settings, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [str(data_dir / "craigslist_2020.csv")]
    started = datetime.now(UTC)
    first = retrain(data=files, max_rounds=50)
    assert first.promote is True
    assert events(own_registry, first.challenger, started) == [("promoted", "no champion this code can run")]

    # The same data again cannot beat the champion by 50% (the margin from PRICEMYRIDE_PROMOTION_MARGIN):
    # rejected, with the reason recorded.
    monkeypatch.setenv("PRICEMYRIDE_PROMOTION_MARGIN", "0.5")
    second = retrain(data=files, max_rounds=50)
    assert second.promote is False
    assert second.champion == first.challenger
    ((kind, reason),) = events(own_registry, second.challenger, started)
    assert kind == "rejected"
    assert "does not beat the champion's" in reason
    assert "by 50%" in reason

    client = MlflowClient(own_registry.tracking_uri)
    aliases = {a: int(client.get_model_version_by_alias(own_registry.model_name, a).version)
               for a in (own_registry.champion_alias, own_registry.challenger_alias)}  # fmt: skip
    assert aliases == {"champion": first.challenger, "challenger": second.challenger}
    tags = client.get_model_version(own_registry.model_name, str(second.challenger)).tags
    assert tags["gate"] == "rejected"
    run = client.get_run(client.get_model_version(own_registry.model_name, str(first.challenger)).run_id)
    reference = client.list_artifacts(run.info.run_id, "reference")
    assert [a.path for a in reference] == ["reference/reference.parquet"]

"""Training and batch prediction against a real MLflow registry (sqlite) on real listings."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pricemyride.events import ModelUpdate
from pricemyride.settings import Settings
from tests.integration.conftest import ROOT
from tests.integration.helpers import read_topic

pytestmark = pytest.mark.integration


def test_champion_is_registered_with_signature_and_tags(settings: Settings, champion: int) -> None:
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient()
    version = client.get_model_version_by_alias(settings.model_name, settings.champion_alias)
    assert int(version.version) == champion
    run = client.get_run(version.run_id)
    assert len(run.data.tags["data_sha256"]) == 64
    assert run.data.metrics["mae"] > 0
    info = mlflow.models.get_model_info(f"models:/{settings.model_name}/{champion}")
    assert info.signature is not None
    assert {"manufacturer", "model", "year", "odometer"} <= set(info.signature.inputs.input_names())


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pricemyride_cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          check=False)  # fmt: skip


def test_predict_prices_valid_rows_and_marks_the_rest_as_the_stream_would(
    settings: Settings, champion: int, data_dir: Path, tmp_path: Path
) -> None:
    rows = pd.read_csv(data_dir / "craigslist_2020.csv", nrows=300)
    rows.loc[0, "year"] = 99999  # the stream dead-letters it; a batch must not rate it a deal
    rows.loc[1, "condition"] = "banana"
    source = tmp_path / "in.csv"
    rows.to_csv(source, index=False)
    out = tmp_path / "out.parquet"
    done = run_cli("predict", "--data", str(source), "--out", str(out))
    assert done.returncode == 0, done.stderr
    scored = pd.read_parquet(out)
    assert len(scored) == 300
    assert {"id", "manufacturer", "price", "valid", "reason", "predicted_price", "model_version"} <= set(scored.columns)
    assert scored.loc[0, "reason"] == f"year: expected a whole year 1900 … {datetime.now(UTC).year + 1}, got 99999"
    assert scored.loc[1, "reason"].startswith("condition: expected one of excellent")
    invalid = ~scored["valid"]
    assert invalid.sum() >= 2
    assert scored.loc[invalid, ["predicted_price", "deal_rating"]].isna().all().all()
    assert (scored.loc[~invalid, "predicted_price"] > 0).all()
    assert (scored.loc[~invalid, "reason"] == "").all()
    assert (scored["model_version"] == champion).all()


def test_predict_takes_a_file_without_optional_columns_as_not_given(
    settings: Settings, champion: int, tmp_path: Path
) -> None:
    source = tmp_path / "minimal.csv"
    pd.DataFrame({"manufacturer": ["toyota", "ford", "honda"], "year": [2015, 2012, None],
                  "odometer": [60_000, 120_000, 90_000]}).to_csv(source, index=False)  # fmt: skip
    done = run_cli("predict", "--data", str(source), "--out", str(tmp_path / "out.csv"))
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(tmp_path / "out.csv")
    assert scored["valid"].all()
    assert (scored["predicted_price"] > 0).all()
    assert (
        (scored["price_low"] < scored["predicted_price"]) & (scored["predicted_price"] < scored["price_high"])
    ).all()
    assert scored["id"].tolist() == ["minimal-r0", "minimal-r1", "minimal-r2"]


def test_train_registers_a_challenger_that_the_gate_keeps_out(own_registry: Settings) -> None:
    from tests.integration.helpers import query

    first = run_cli("train", "--limit", "3000", "--max-rounds", "200")
    assert first.returncode == 0, first.stderr
    crowned = json.loads(first.stdout.strip().splitlines()[-1])
    assert crowned["alias"] == "champion", "the first model has no champion to beat"
    weak = run_cli("train", "--limit", "3000", "--max-rounds", "1")
    assert weak.returncode == 0, weak.stderr
    refused = json.loads(weak.stdout.strip().splitlines()[-1])
    assert refused["alias"] == "challenger"
    client = MlflowClient(own_registry.tracking_uri)
    champion = client.get_model_version_by_alias(own_registry.model_name, own_registry.champion_alias)
    assert int(champion.version) == crowned["version"]
    statement = "SELECT kind, reason FROM model_events WHERE version = %s AND metrics->>'model' = %s"
    ((kind, reason),) = query(own_registry, statement, [refused["version"], own_registry.model_name])
    assert kind == "rejected"
    assert any(
        why in reason for why in ("does not beat the champion's", "no better than the median price", "range covers")
    )


def test_promote_a_version_then_roll_back_and_workers_are_told(own_registry: Settings) -> None:
    from training.model import TrainParams
    from training.train import train

    first = train(own_registry, None, limit=3000, params=TrainParams(max_rounds=60)).version
    second = train(own_registry, None, limit=3000, params=TrainParams(max_rounds=60), promote=False).version
    done = run_cli("promote", "--version", str(second), "--reason", "hand-picked")
    assert done.returncode == 0, done.stderr
    client = MlflowClient(own_registry.tracking_uri)
    alias = own_registry.champion_alias
    assert int(client.get_model_version_by_alias(own_registry.model_name, alias).version) == second
    back = run_cli("promote", "--rollback")
    assert back.returncode == 0, back.stderr
    assert int(client.get_model_version_by_alias(own_registry.model_name, alias).version) == first
    updates = [
        ModelUpdate.model_validate_json(m.value) for m in read_topic(own_registry, own_registry.model_updates_topic)
    ]
    mine = [(u.version, u.reason) for u in updates if u.model == own_registry.model_name]
    assert mine[-2:] == [(second, "hand-picked"), (first, f"rollback to version {first}")]
    missing = run_cli("promote", "--version", "999")
    assert missing.returncode == 69
    assert "expected a registered version 999, found none" in missing.stderr


def test_train_cli_without_data_uses_the_generator_and_keeps_the_champion(settings: Settings, champion: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pricemyride_cli", "train", "--max-rounds", "30", "--no-promote"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    client = MlflowClient(settings.tracking_uri)
    newest = max(int(v.version) for v in client.search_model_versions(f"name='{settings.model_name}'"))
    assert newest > champion
    assert int(client.get_model_version_by_alias(settings.model_name, settings.champion_alias).version) == champion
    params = client.get_run(client.get_model_version(settings.model_name, str(newest)).run_id).data.params
    assert params["data"] == "generator"


def test_rescore_scores_stored_listings_with_another_version_once(
    settings: Settings, champion: int, worker: Path, data_dir: Path
) -> None:
    from datetime import UTC, datetime

    from tests.integration.helpers import scalar
    from training.model import TrainParams
    from training.rescore import rescore
    from training.train import train

    listings = scalar(settings, "SELECT count(DISTINCT listing_id) FROM predictions")
    assert listings > 0, "the pipeline test stored listings first"
    other = train(settings, data_dir / "craigslist_2020.csv", params=TrainParams(max_rounds=50), promote=False)
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert rescore(settings, since, other.version) == listings
    count = "SELECT count(*) FROM predictions WHERE model_version = %s"
    assert scalar(settings, count, [other.version]) == listings
    rescore(settings, since, other.version)
    assert scalar(settings, count, [other.version]) == listings, "rescoring again adds no row"


def test_train_refuses_too_few_rows_before_registering_anything(settings: Settings, tmp_path: Path) -> None:
    client = MlflowClient(settings.tracking_uri)
    before = len(client.search_model_versions(f"name='{settings.model_name}'"))
    small = run_cli("train", "--limit", "400")
    assert small.returncode == 64
    assert "argument --limit: expected at least 1000 rows, got '400'" in small.stderr
    anchors = tmp_path / "anchors.csv"
    pd.DataFrame({"id": range(1_200), "price": 0, "year": 2015, "manufacturer": "ford", "model": "focus",
                  "odometer": 50_000}).to_csv(anchors, index=False)  # fmt: skip
    done = run_cli("train", "--data", str(anchors))
    assert done.returncode == 65, done.stderr
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("pricemyride train:")]
    assert f"{anchors}: expected at least 1000 usable labelled listings, got 0 of 1200" in error
    assert "Traceback" not in done.stderr
    assert len(client.search_model_versions(f"name='{settings.model_name}'")) == before

"""Training and batch prediction against a real MLflow registry (sqlite) on real listings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pricemyride.settings import Settings
from tests.integration.conftest import ROOT

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


def test_predict_cli_scores_a_real_file(settings: Settings, champion: int, data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pd.read_csv(data_dir / "craigslist_2020.csv", nrows=300).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    done = subprocess.run(
        [sys.executable, "-m", "pricemyride.cli", "predict", "--data", str(source), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(out)
    assert len(scored) == 300
    assert {"id", "manufacturer", "price", "predicted_price", "model_version"} <= set(scored.columns)
    assert (scored["predicted_price"] > 0).all()
    assert (scored["model_version"] == champion).all()


def test_train_cli_without_data_uses_the_generator_and_keeps_the_champion(settings: Settings, champion: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pricemyride.cli", "train", "--max-rounds", "30", "--no-promote"],
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

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

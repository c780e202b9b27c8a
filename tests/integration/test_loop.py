"""The closed loop on the real broker, database, registry and Prefect, with small windows.

Drift: a 2020 champion meets 2021 listings in posting order → a retrain request → a challenger in shadow →
the live gate promotes it on the next listings → later predictions carry it, with a lower realized error
than the old champion on the same listings.
Control: a 2021 champion meets other 2021 listings → no retrain request. Both: nothing lost or doubled.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.demo_drift import promoted_after, realized_mae, start_loop, stop_loop, summary
from infra.harness import rows, topic_keys
from infra.services import Paths
from pricemyride.bootstrap import prepare
from pricemyride.datafile import read_listings_file
from pricemyride.settings import Settings
from producers.replay import replay
from tests.conftest import isolated_env
from tests.integration.conftest import RUN_ID
from tests.integration.helpers import wait_for
from training.data import model_input
from training.model import TrainParams
from training.registry import configure, load_version
from training.train import train

pytestmark = pytest.mark.integration
SMALL_WINDOWS = {
    "PRICEMYRIDE_DRIFT_WINDOW_EVENTS": "600",
    "PRICEMYRIDE_DRIFT_WINDOW_SECONDS": "5",
    "PRICEMYRIDE_DRIFT_MIN_ROWS": "300",
    "PRICEMYRIDE_DRIFT_CONSECUTIVE_WINDOWS": "2",
    "PRICEMYRIDE_DRIFT_COOLDOWN_S": "600",
    "PRICEMYRIDE_REGISTRY_POLL_S": "300",  # the swap must come from the model-updates event
    "PRICEMYRIDE_SHADOW_MIN_ROWS": "300",
    "PRICEMYRIDE_SHADOW_CHECK_S": "1",
}


@pytest.fixture
def world(services: None, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    env = isolated_env(f"{request.node.name[5:15]}{RUN_ID}".replace("_", "-"), tmp_path, 8063, **SMALL_WINDOWS)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        settings = Settings()
        prepare(settings)
        yield settings
        stop_loop(settings)


def sorted_by_posting(path: Path, out: Path) -> Path:
    frame = read_listings_file(path)
    frame["_at"] = pd.to_datetime(frame["posting_date"], utc=True, errors="coerce", format="mixed")
    frame.dropna(subset=["_at"]).sort_values("_at").drop(columns="_at").to_csv(out, index=False)
    return out


def handled(settings: Settings) -> int:
    return int(rows(settings, "SELECT (SELECT count(DISTINCT listing_id) FROM predictions) + "
                              "(SELECT count(*) FROM dead_letters)")[0][0])  # fmt: skip


def scrape(log: Path) -> dict[str, float]:
    """The /metrics of the process that wrote ``log`` (its ops port is in its first lines): series → value."""
    found = re.search(r"metrics on (http://\S+/metrics)", log.read_text())
    assert found, f"no metrics address in {log}"
    with urllib.request.urlopen(found.group(1), timeout=10) as response:
        text = response.read().decode()
    series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            series[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return series


def test_drift_triggers_retrain_promotion_and_hot_swap(world: Settings, data_dir: Path, tmp_path: Path) -> None:
    first = train(world, data_dir / "craigslist_2020.csv", params=TrainParams(max_rounds=400)).version
    stream = sorted_by_posting(data_dir / "craigslist_2021.csv", tmp_path / "2021_by_date.csv")
    start_loop(world)

    replay(world, stream, limit=6_000, progress=False)
    worker_log = Paths(world.state_path).logs / "drift-worker.log"
    shadowed = "SELECT version FROM model_events WHERE kind = 'shadowed'"
    wait_for(lambda: bool(rows(world, shadowed)), 300, "a challenger in shadow after drift")
    challenger = rows(world, shadowed)[0][0]
    wait_for(lambda: f"version {challenger} is loaded; it scores in shadow" in worker_log.read_text(), 60,
             "the worker to load the challenger in shadow")  # fmt: skip
    replay(world, stream, skip=6_000, limit=2_000, progress=False)  # the live gate judges it on these
    wait_for(lambda: promoted_after(world, first) is not None, 120, "the live gate to promote it")
    promoted, _ = promoted_after(world, first)  # type: ignore[misc]
    assert promoted == challenger
    assert rows(world, "SELECT count(*) FROM retrain_requests")[0][0] >= 1
    assert rows(world, "SELECT count(*) FROM drift_windows WHERE cardinality(fired) > 0")[0][0] >= 2

    wait_for(lambda: f"version {promoted} is loaded; it scores from" in worker_log.read_text(), 60,
             "the worker to load the new champion on the model-updates event")  # fmt: skip
    replay(world, stream, skip=8_000, limit=3_000, progress=False)
    produced = topic_keys(world, world.listings_topic)
    wait_for(lambda: handled(world) >= len(set(produced)), 180, "every listing stored")
    logs = Paths(world.state_path).logs
    worker, monitor, listener = (
        scrape(logs / f"{n}.log") for n in ("drift-worker", "drift-monitor", "drift-retrainer")
    )
    assert (worker["pricemyride_model_version"], worker["pricemyride_model_swaps_total"]) == (promoted, 1)
    assert monitor['pricemyride_drift_windows_total{fired="true"}'] >= 2
    assert monitor["pricemyride_retrain_requests_published_total"] >= 1
    assert listener['pricemyride_retrain_runs_total{outcome="shadowed"}'] == 1
    assert listener['pricemyride_live_gate_decisions_total{outcome="promoted"}'] == 1
    result = summary(world, produced, first, promoted_after(world, first))
    assert (result["lost"], result["duplicated"]) == (0, 0), result

    later = pd.DataFrame([{**r[0], "predicted_price": r[1], "model_version": r[2]} for r in rows(
        world, "SELECT listing, predicted_price, model_version FROM predictions WHERE listing_id = ANY(%s)",
        [list(read_listings_file(stream).iloc[8_000:11_000]["id"].dropna())])])  # fmt: skip
    assert (later["model_version"] == promoted).all(), "every listing after the swap is scored by the new version"
    by_new = later[later["model_version"] == promoted]
    old_model = load_version(configure(world), world, first).model
    by_old = by_new.assign(predicted_price=old_model.predict(model_input(by_new)))
    mae_new, mae_old = realized_mae(by_new), realized_mae(by_old)
    assert mae_new is not None
    assert mae_old is not None
    assert mae_new < mae_old, f"realized MAE after the swap {mae_new:.0f} vs the old champion's {mae_old:.0f}"


@pytest.mark.long  # `make chaos`; make test keeps the drift case above (and test_monitoring's same-data case)
def test_no_drift_control_requests_no_retrain(world: Settings, data_dir: Path, tmp_path: Path) -> None:
    frame = read_listings_file(data_dir / "craigslist_2021.csv").sample(frac=1.0, random_state=7)
    half = len(frame) // 2
    frame.iloc[:half].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[half : half + 4_000].to_csv(tmp_path / "stream.csv", index=False)
    first = train(world, tmp_path / "train.csv", params=TrainParams(max_rounds=400)).version
    start_loop(world)
    replay(world, tmp_path / "stream.csv", progress=False)
    produced = topic_keys(world, world.listings_topic)
    wait_for(lambda: handled(world) >= len(set(produced)), 180, "every listing stored")
    wait_for(lambda: rows(world, "SELECT coalesce(sum(rows), 0) FROM drift_windows")[0][0] >= 3_000, 60,
             "the drift worker to close its windows")  # fmt: skip
    assert rows(world, "SELECT count(*) FROM retrain_requests")[0][0] == 0
    assert rows(world, "SELECT count(*) FROM drift_windows")[0][0] >= 4
    result = summary(world, produced, first, None)
    assert (result["lost"], result["duplicated"]) == (0, 0), result
    assert np.isfinite(result["mae_before"])

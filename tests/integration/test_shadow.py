"""Shadow scoring and the live gate on the real broker, database, registry and Prefect (issue 27).

One world, one story on real listings, with the price levels of 2020 and 2021 as the live market:
1. a 2020 champion; the retrain flow trains a challenger on 2021 listings, the offline gate passes it, and it
   scores in shadow; 2021 listings stream in: the live gate promotes it, and the 2020 champion watches;
2. the market turns back (2020 listings): the new champion is worse live than the one it replaced, and is
   rolled back;
3. a 2021 challenger again passes offline, but the live market is 2020's: it is rejected live. A worker is
   killed during this shadow period.
Through all of it: nothing lost or duplicated, shadow prices never published, every decision with its figures.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from infra.harness import WORKER_ARGS, rows, spawn, topic_keys
from infra.services import Paths, pid_alive, stop_pid
from pricemyride.bootstrap import prepare
from pricemyride.datafile import read_listings_file
from pricemyride.settings import Settings
from producers.replay import replay
from tests.conftest import isolated_env
from tests.integration.conftest import RUN_ID
from tests.integration.helpers import read_topic, wait_for
from training.flow import retrain
from training.model import TrainParams
from training.train import train

pytestmark = pytest.mark.integration
LIVE = {
    "PRICEMYRIDE_SHADOW_MIN_ROWS": "300",
    "PRICEMYRIDE_SHADOW_WATCH_ROWS": "300",
    "PRICEMYRIDE_SHADOW_CHECK_S": "1",
    "PRICEMYRIDE_SHADOW_RESAMPLES": "1000",
    "PRICEMYRIDE_REGISTRY_POLL_S": "300",  # shadows and swaps must come from the model-updates events
}
PROCESSES = {"shadow-worker": WORKER_ARGS, "shadow-listener": ["-m", "pricemyride_cli", "retrain-listener"]}


@pytest.fixture(scope="module")
def world(services: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    env = isolated_env(f"shadow{RUN_ID}", tmp_path_factory.mktemp("shadow"), 8064, **LIVE)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        settings = Settings()
        prepare(settings)
        yield settings
        for name in PROCESSES:
            stop_pid(name, Paths(settings.state_path), timeout_s=20)


@pytest.fixture(scope="module")
def parts(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Disjoint parts of the real files: what models train on, and what streams live (never trained on)."""
    folder, out = tmp_path_factory.mktemp("parts"), {}
    for year in (2020, 2021):
        frame = read_listings_file(data_dir / f"craigslist_{year}.csv").sample(frac=1.0, random_state=3)
        frame = frame[frame["id"].isna() | ~frame["id"].duplicated()]  # no id: the replay names it by its row
        for name, part in (("train", frame.iloc[:8_000]), ("live", frame.iloc[8_000:11_000])):
            out[f"{name}{year}"] = folder / f"{name}{year}.csv"
            part.to_csv(out[f"{name}{year}"], index=False)
    return out


def events(settings: Settings) -> list[tuple[str, int, str]]:
    """(kind, version, outcome or role) of every model event, oldest first."""
    found = rows(settings, "SELECT kind, version, coalesce(metrics->>'outcome', metrics->>'role', '') "
                           "FROM model_events ORDER BY id")  # fmt: skip
    return [(kind, int(version), str(extra)) for kind, version, extra in found]


def worker_log(settings: Settings) -> str:
    return (Paths(settings.state_path).logs / "shadow-worker.log").read_text()


def stream(settings: Settings, path: Path, skip: int, limit: int) -> None:
    summary = replay(settings, path, skip=skip, limit=limit, progress=False)
    assert summary.failed == 0


def shadow_in_worker(settings: Settings, version: int) -> None:
    wait_for(lambda: f"version {version} is loaded; it scores in shadow" in worker_log(settings), 90,
             f"the worker to load version {version} in shadow")  # fmt: skip


def challenger_in_shadow(settings: Settings, data: Path) -> int:
    decision = retrain(data=[str(data)], max_rounds=150)
    assert (decision.promote, decision.shadowed) == (True, True), decision.reason
    assert events(settings)[-1] == ("shadowed", decision.challenger, "challenger")
    shadow_in_worker(settings, decision.challenger)
    return decision.challenger


def decided(settings: Settings, kinds: set[str]) -> tuple[str, int] | None:
    """The newest event of one of ``kinds``: (kind, version)."""
    return next(((kind, version) for kind, version, _ in reversed(events(settings)) if kind in kinds), None)


def test_a_challenger_earns_promotion_live_a_worse_champion_is_rolled_back_and_a_worse_one_rejected(
    world: Settings, parts: dict[str, Path]
) -> None:
    first = train(world, parts["train2020"], params=TrainParams(max_rounds=150)).version
    paths = Paths(world.state_path)
    for name, args in PROCESSES.items():
        spawn(name, args, paths)
    wait_for(lambda: f"scoring with {world.model_name} version {first}" in worker_log(world), 90, "the worker")

    second = challenger_in_shadow(world, parts["train2021"])
    stream(world, parts["live2021"], 0, 1_500)
    wait_for(lambda: decided(world, {"promoted"}) == ("promoted", second), 120, "the live gate to promote")
    live = rows(world, "SELECT metrics->'live' FROM model_events WHERE kind = 'promoted' AND version = %s", [second])
    assert live[0][0]["rows"] >= 300, live
    assert live[0][0]["ci_high"] < 0, live
    assert set(live[0][0]["by_source"]) == {"file:live2021.csv"}
    shadow_in_worker(world, first)  # the champion it replaced watches it

    stream(world, parts["live2020"], 0, 1_500)
    wait_for(lambda: decided(world, {"promoted"}) == ("promoted", first), 120, "the rollback")
    assert decided(world, {"rolled_back"}) == ("rolled_back", second)
    wait_for(lambda: f"version {first} is loaded; it scores from the next batch on" in worker_log(world), 60,
             "the worker to load the champion it rolled back to")  # fmt: skip

    third = challenger_in_shadow(world, parts["train2021"])
    kill_worker_during(world, parts["live2020"])
    wait_for(lambda: decided(world, {"rejected"}) is not None, 120, "the live gate to reject")
    assert decided(world, {"rejected"}) == ("rejected", third)
    assert nothing_lost_or_doubled(world)
    shadow_prices_are_never_published(world, {second, third})


def kill_worker_during(settings: Settings, path: Path) -> None:
    """Stream the rest of ``path``; kill the worker (SIGKILL) once it has stored some of it, and start another."""
    paths = Paths(settings.state_path)
    stored_before = rows(settings, "SELECT count(*) FROM shadow_predictions")[0][0]
    stream(settings, path, 1_500, 1_500)
    wait_for(lambda: rows(settings, "SELECT count(*) FROM shadow_predictions")[0][0] > stored_before, 60,
             "some shadow prices of the third challenger")  # fmt: skip
    os.kill(int(paths.pid_file("shadow-worker").read_text()), signal.SIGKILL)
    wait_for(lambda: pid_alive(paths.pid_file("shadow-worker")) is None, 30, "the killed worker to be gone")
    spawn("shadow-worker", WORKER_ARGS, paths)


def nothing_lost_or_doubled(settings: Settings) -> bool:
    produced = set(topic_keys(settings, settings.listings_topic))
    wait_for(lambda: stored_ids(settings) >= produced, 180, "every listing stored")
    published = [json.loads(m.value) for m in read_topic(settings, settings.predictions_topic)]
    pairs = pd.DataFrame([(p["listing_id"], p["model_version"]) for p in published], columns=["id", "version"])
    assert not pairs.duplicated().any(), pairs[pairs.duplicated()]
    assert stored_ids(settings) == produced
    return True


def stored_ids(settings: Settings) -> set[str]:
    return {r[0] for r in rows(settings, "SELECT listing_id FROM predictions")}


def shadow_prices_are_never_published(settings: Settings, challengers: set[int]) -> None:
    """A version's prices reach the predictions (and the topic) only from its promotion on."""
    shadowed = rows(settings, "SELECT shadow_version, count(*) FROM shadow_predictions GROUP BY 1")
    assert {v for v, n in shadowed if n > 0} >= challengers
    for version in challengers:
        promoted = rows(settings, "SELECT min(at) FROM model_events WHERE kind = 'promoted' AND version = %s",
                        [version])  # fmt: skip
        early = rows(settings, "SELECT count(*) FROM predictions WHERE model_version = %s AND (%s::timestamptz IS NULL "
                               "OR scored_at < %s)", [version, promoted[0][0], promoted[0][0]])  # fmt: skip
        assert early[0][0] == 0, f"version {version} priced listings before its promotion"

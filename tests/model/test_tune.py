"""The hyperparameter search, on a small budget: reproducible, starts from today's settings, scores on
validation data at every information level."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from training.model import TrainParams
from training.tune import TUNED, tune


def test_a_small_search_is_reproducible_and_starts_from_the_defaults() -> None:
    first = tune(None, trials=3, max_rounds=30, limit=3_000)
    again = tune(None, trials=3, max_rounds=30, limit=3_000)
    assert [t["params"] for t in first["all"]] == [t["params"] for t in again["all"]]
    assert [t["value"] for t in first["all"]] == [t["value"] for t in again["all"]]
    defaults = asdict(TrainParams())
    assert first["all"][0]["params"] == {k: defaults[k] for k in TUNED}
    assert all(t["params"] != first["all"][0]["params"] for t in first["all"][1:]), "the search moved"
    assert all(np.isfinite(t["value"]) and t["value"] > 0 for t in first["all"])
    assert "information levels" in first["objective"]

"""The fuzzer's bounded run in ``make test`` (``make fuzz`` runs 100,000 cases): hostile and mutated real
listings through the worker's scoring step with a real model never raise, and each ends stored or dead-lettered."""

from __future__ import annotations

from tests.corpus.hostile import corpus
from tests.fuzzing import COUNTS, check_batch, run


def test_a_few_hundred_fuzz_cases_never_crash_the_scoring_step() -> None:
    counts = run(400)
    assert counts["cases"] >= 400
    assert counts["scored"] > 0, "the mutations leave some listings valid: the model's path is exercised"
    assert counts["dead"] > 0


def test_the_hostile_corpus_in_one_batch_is_scored_or_dead_lettered() -> None:
    before = dict(COUNTS)
    items = [h for h in corpus() if h.expect != "refused"]
    check_batch([h.value for h in items])
    assert COUNTS["scored"] - before["scored"] == sum(h.expect == "scored" for h in items)
    assert COUNTS["dead"] - before["dead"] == sum(h.expect == "dead" for h in items)

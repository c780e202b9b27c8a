"""The worker keeps its long-lived heap out of the cyclic collector's scans, and still frees what dies."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from training.champion import freeze_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector can free it


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_objects_alive_at_the_freeze_are_no_longer_scanned() -> None:
    kept = [Node() for _ in range(1_000)]
    before = gc.get_freeze_count()
    freeze_heap(collect=True)
    assert gc.get_freeze_count() >= before + len(kept)
    assert all(not any(k is o for o in gc.get_objects(generation=2)) for k in kept[:3])


def test_start_up_garbage_is_collected_before_the_freeze() -> None:
    gc.disable()
    try:
        ref = weakref.ref(Node())  # unreachable at once, freed only by a collection
        freeze_heap(collect=True)
        assert ref() is None
    finally:
        gc.enable()

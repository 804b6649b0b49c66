"""The worker's collector policy: survivors of a full collection are frozen (so the next
one does not walk them again), and a sweep still frees a cycle that died while frozen."""
from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from stream.gcpause import SWEEP_EVERY, ServiceCollector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def collector() -> Iterator[tuple[ServiceCollector, list[float], list[tuple[int, float]]]]:
    now = [1000.0]
    pauses: list[tuple[int, float]] = []
    policy = ServiceCollector(clock=lambda: now[0], observe=lambda generation, seconds: pauses.append((generation, seconds)))
    gc.callbacks.append(policy)
    try:
        yield policy, now, pauses
    finally:
        gc.callbacks.remove(policy)
        gc.unfreeze()
        gc.collect()


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_survivors_of_a_full_collection_are_frozen(collector: tuple[ServiceCollector, list[float], list]) -> None:
    _, _, pauses = collector
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() >= before + len(kept)
    assert (2, pauses[-1][1]) == pauses[-1] and pauses[-1][1] >= 0  # the pause was reported, as generation 2


def test_a_cycle_that_died_while_frozen_waits_for_the_sweep(collector: tuple[ServiceCollector, list[float], list]) -> None:
    policy, now, _ = collector
    dead = cycle()
    gc.collect()  # garbage before the collection: freed, not frozen
    assert dead() is None

    alive = [Node(), Node()]
    alive[0].other, alive[1].other = alive[1], alive[0]
    watch = weakref.ref(alive[0])
    gc.collect()  # survives (referenced), so it is frozen
    del alive
    gc.collect()
    assert watch() is not None, "a frozen cycle is not walked by ordinary collections"

    assert policy.sweep() == 0 and watch() is not None, "not due yet"
    now[0] += SWEEP_EVERY
    assert policy.sweep() >= 2
    assert watch() is None
    assert policy.sweeps == 1

"""The worker's collector policy: survivors of a full collection are frozen (so the next
one does not walk them again), and a sweep still frees a cycle that died while frozen."""
from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from stream.gcpause import SWEEP_EVERY, ServiceCollector, collector_paused


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


def test_what_survives_a_paused_collector_is_filed_old_and_dead_cycles_are_still_freed() -> None:
    """Replay's pause: afterwards the young generation does not hold the survivors (its
    first collection would walk them all), nothing stays frozen, and a cycle that died
    during the pause is freed by a full collection."""
    gc.collect()
    with collector_paused():
        survivors = [[] for _ in range(20_000)]
        dead = cycle()
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_count()[0] < 1_000
    assert gc.get_freeze_count() == 0
    assert dead() is not None
    gc.collect()
    assert dead() is None
    assert len(survivors) == 20_000

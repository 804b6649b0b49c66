"""The engine's cache of evaluation plans is bounded; a full cache is emptied and the
plans in use are compiled again. Churning it on every evaluation must not change a
single change event: the change stream with room for one plan equals the one with
the default room, over generated shop traffic (identify merges and time-based flips
included, which ask for many different sets of segments)."""
from __future__ import annotations

from pathlib import Path

import pytest

from examples.traffic import TrafficConfig
from rules import Engine, Event, load_definitions
from rules.evaluate import engine as engine_module
from stream.replay import replay

SEGMENTS = Path(__file__).parents[2] / "examples" / "segments"


def _changes(events: list[Event]) -> tuple[list[object], Engine]:
    engine = Engine(load_definitions(SEGMENTS))
    found: list[object] = []
    replay(engine, events, found.append)
    return found, engine


def test_a_churning_plan_cache_gives_the_same_changes(monkeypatch: pytest.MonkeyPatch, shop_events) -> None:
    events = shop_events(TrafficConfig(customers=400, days=120, seed=11))
    roomy, engine = _changes(events)
    assert len(engine._plans) > 3 and any(change.cause == "timer" for change in roomy)  # type: ignore[attr-defined]
    monkeypatch.setattr(engine_module, "MAX_PLANS", 1)
    churned, engine = _changes(events)
    assert len(engine._plans) == 1
    assert churned == roomy

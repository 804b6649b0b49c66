"""Driving the product from the reference tests: definitions from text, events from
dicts, replay in event time, and reading trait values back."""
from __future__ import annotations

from collections.abc import Iterable

import orjson

from reference_model import parse_ts
from rules import Change, Engine, Event, parse_event
from rules.language.model import Definitions
from stream.replay import replay


def to_event(raw: dict) -> Event:
    return parse_event(orjson.dumps(raw))


def sort_events(raws: Iterable[dict]) -> list[dict]:
    """Event-time order, stable for equal timestamps (what replay expects)."""
    return sorted(raws, key=lambda raw: parse_ts(raw["timestamp"]))  # type: ignore[arg-type,return-value]


def run_replay(defs: Definitions, raws: Iterable[dict], as_of: int | None = None) -> tuple[Engine, list[Change]]:
    engine = Engine(defs)
    changes: list[Change] = []
    replay(engine, [to_event(raw) for raw in sort_events(raws)], changes.append, as_of=as_of)
    return engine, changes


def engine_trait_values(engine: Engine, customer: str, now: int) -> dict[str, object]:
    """Trait values of one customer as the engine reports them (`explain`) at `now`."""
    explained = engine.explain(customer, now)
    assert explained is not None
    return dict(explained["traits"])  # type: ignore[arg-type]

"""Test helpers: an in-memory source and sink so the evaluator runs without Kafka.

    source = MemorySource()
    source.add("order_placed", "c-1", "2026-01-01T00:00:00Z", total=600)
    sink = MemorySink()
    run(definitions_from_text(YAML, tmp_path), source, sink)
    assert sink.transitions("c-1", "big_order") == [("enter", 1)]
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from rules import Change, Engine, Event, load_definitions, parse_event
from rules.language.model import Definitions
from stream.replay import ReplaySummary, replay


def definitions_from_text(text: str, folder: Path) -> Definitions:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "segments.yaml").write_text(text)
    return load_definitions(folder)


@dataclass
class MemorySource:
    """Events built in code; `events()` returns them validated, in event-time order."""

    raw: list[bytes] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]

    def add(self, type: str, customer_id: str | None, timestamp: object, *, event_id: str | None = None,
            anonymous_id: str | None = None, **properties: object) -> str:
        event_id = event_id or f"e{next(self._ids)}"
        body: dict[str, object] = {"event_id": event_id, "type": type, "timestamp": timestamp,
                                   "properties": properties}
        if customer_id is not None:
            body["customer_id"] = customer_id
        if anonymous_id is not None:
            body["anonymous_id"] = anonymous_id
        self.raw.append(orjson.dumps(body))
        return event_id

    def events(self) -> list[Event]:
        return sorted((parse_event(raw) for raw in self.raw), key=lambda e: e.ts)


@dataclass
class MemorySink:
    changes: list[Change] = field(default_factory=list)

    def __call__(self, change: Change) -> None:
        self.changes.append(change)

    def transitions(self, customer: str, segment: str) -> list[tuple[str, int]]:
        return [(c.change, c.seq) for c in self.changes if c.customer_id == customer and c.segment == segment]


def run(defs: Definitions, source: MemorySource, sink: MemorySink, as_of: int | None = None) -> tuple[Engine, ReplaySummary]:
    engine = Engine(defs)
    return engine, replay(engine, source.events(), sink, as_of)

"""Reading event files (JSONL or .jsonl.gz) for replay and preview."""
from __future__ import annotations

import gzip
import operator
from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rules import BadEvent, Event, parse_event


@dataclass
class LoadedEvents:
    """Good events in event-time order (ties keep file order) and bad lines with reasons."""

    events: list[Event] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    lines: int = 0


def open_events(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def numbered_lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(handle, start=1):
        line = line.strip()
        if line:
            yield number, line


def load_events(path: Path, on_progress: object = None,
                read_properties: Container[str] | None = None) -> LoadedEvents:
    """Parse every line; bad lines are kept as (line, reason), never fatal.

    `on_progress(bytes_read)` is called now and then so a caller can draw a bar.
    `read_properties`: keep the properties of these event types only (see
    `parse_event`); every line is validated all the same.
    """
    loaded = LoadedEvents()
    events, bad = loaded.events, loaded.bad
    raw_size = path.stat().st_size
    with path.open("rb") as raw, (gzip.open(raw, "rb") if path.suffix == ".gz" else raw) as handle:
        append, number = events.append, 0
        for number, line in enumerate(handle, start=1):  # type: ignore[arg-type]
            try:
                append(parse_event(line, read_properties=read_properties))
            except BadEvent as exc:
                if line.strip():
                    bad.append((number, str(exc)))
            if on_progress is not None and not number % 50_000:
                on_progress(min(raw.tell(), raw_size))  # type: ignore[operator]
        loaded.lines = number
    if on_progress is not None:
        on_progress(raw_size)  # type: ignore[operator]
    events.sort(key=_TIMESTAMP)  # stable: equal timestamps keep file order
    return loaded


_TIMESTAMP = operator.attrgetter("ts")

"""Shared fixtures for every test area."""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from examples.traffic import TrafficConfig, generate
from rules import BadEvent, Event, parse_event


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented YAML to a file in a fresh folder and return the folder."""

    def write(text: str, name: str = "segments.yaml") -> Path:
        folder = tmp_path / "segments"
        folder.mkdir(exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"))
        return folder

    return write


@pytest.fixture(scope="session")
def shop_events() -> Callable[[TrafficConfig], list[Event]]:
    """The usable events of generated shop traffic in event-time order, as replay takes
    them (the generator's deliberate bad events left out)."""

    def events(config: TrafficConfig) -> list[Event]:
        found = []
        for raw in generate(config):
            try:
                found.append(parse_event(raw))
            except BadEvent:
                continue
        found.sort(key=lambda event: event.ts)
        return found

    return events

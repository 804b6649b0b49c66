"""Fixtures for the streaming worker tests: the embedded broker.

The helper modules (`harness`, `memory_bus`) live next to this file; make them
importable whatever pytest's import mode.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.broker import EmbeddedBroker

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One embedded broker per test module; every test uses its own topics and app id."""
    server = EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()

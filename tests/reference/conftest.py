"""Shared fixtures for the reference-model tests.

The helper modules (`reference_model`, `strategies`, `engine_harness`) live next to
this file; make them importable whatever pytest's import mode.
"""
from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rules import load_definitions  # noqa: E402
from rules.language.model import Definitions  # noqa: E402


@pytest.fixture(scope="session")
def load_defs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Definitions]:
    """YAML text -> Definitions, through a real file (session scoped: usable under hypothesis)."""
    folder = tmp_path_factory.mktemp("definitions")
    counter = itertools.count()

    def load(text: str) -> Definitions:
        path = folder / f"defs_{next(counter)}.yaml"
        path.write_text(text)
        return load_definitions(path)

    return load

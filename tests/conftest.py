"""Shared fixtures for every test area."""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented YAML to a file in a fresh folder and return the folder."""

    def write(text: str, name: str = "segments.yaml") -> Path:
        folder = tmp_path / "segments"
        folder.mkdir(exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"))
        return folder

    return write

"""The `segmenter` entry point itself: what every command shares."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stream.cli import main

ROOT = Path(__file__).parents[2]


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    """`segmenter lint segments/ | head -1`: once the reader has gone, the command
    stops with the shell's code for a tool the pipe stopped, not with a traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        done = subprocess.run([sys.executable, "-m", "stream.cli", "lint", str(ROOT / "examples" / "segments")],
                              stdout=write_end, stderr=subprocess.PIPE, cwd=ROOT, timeout=60)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == b""


def test_a_worker_without_definitions_says_where_to_give_them(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # no segments/ folder here
    monkeypatch.delenv("SEGMENTER_SEGMENTS", raising=False)
    assert main(["worker"]) == 1
    assert capsys.readouterr().err == ("segments: no such file or folder for the definitions (the default; give them "
                                       "with --segments PATH or SEGMENTER_SEGMENTS)\nworker not started\n")


def test_version_is_the_one_in_pyproject(capsys) -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"segmenter {declared}\n"

"""Fixtures for the deployment files (docker-compose.yml, deploy/).

promtool (Debian package `prometheus`) and docker-compose (Debian package
`docker-compose`; `config` needs no Docker engine) are installed by `.ci/run`.
Under CI (`CI` set, as `.ci/run` does) a missing tool fails the test; elsewhere the
test is skipped with the reason, so a developer without the tools can run the rest.
The helper module `deploy_files` lives next to this file.
"""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def tool() -> Callable[[str, str], str]:
    """Path of a command-line tool; fail under CI when it is missing, else skip."""

    def find(name: str, package: str) -> str:
        path = shutil.which(name)
        if path is None:
            reason = f"{name} not found (Debian package `{package}`; .ci/run installs it)"
            if in_ci():
                pytest.fail(reason)
            pytest.skip(reason)
        return path

    return find

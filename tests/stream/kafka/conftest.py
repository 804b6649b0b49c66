"""Fixtures for the streaming worker tests.

The helper modules (`harness`, `memory_bus`) live next to this file; make them
importable whatever pytest's import mode.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

"""The demo's worker and sinks run with the demo's settings, whatever `SEGMENTER_*`
variables the user has set for their own deployment: a `SEGMENTER_TOPICS` or
`SEGMENTER_REDIS_PREFIX` of theirs must not point the demo elsewhere."""
from __future__ import annotations

from pathlib import Path

import pytest

from sinks import settings as sink_settings
from stream import settings as worker_settings
from stream.settings import child_environment
from stream.demo.sinks import DemoSinks

REPO = Path(__file__).resolve().parents[2]
USERS_OWN = {"SEGMENTER_TOPICS": "their-orders", "SEGMENTER_CHANGES_TOPIC": "their-changes",
             "SEGMENTER_STORE": "rocksdb://", "SEGMENTER_PROCESSES": "4", "SEGMENTER_REDIS_PREFIX": "theirs:",
             "SEGMENTER_MAX_RETRIES": "0", "SEGMENTER_SINKS_GROUP": "their-sinks"}


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> worker_settings.Settings:
    for name, value in USERS_OWN.items():
        monkeypatch.setenv(name, value)
    return worker_settings.Settings(brokers=["kafka://127.0.0.1:9"], segments=REPO / "examples" / "segments",
                                    store="memory://", data_dir=tmp_path / "data", web_port=18_123)


def test_the_demo_worker_reads_the_demo_settings_only(demo: worker_settings.Settings) -> None:
    environment = child_environment(demo)
    assert worker_settings.from_arguments(None, environment) == demo


def test_the_demo_sinks_read_the_demo_settings_only(demo: worker_settings.Settings, tmp_path: Path) -> None:
    sinks = DemoSinks(tmp_path / "demo", REPO / "examples")
    own = sinks.settings(demo)
    worker, sink = sink_settings.from_arguments(None, child_environment(demo, own))
    assert worker == demo
    assert sink == own
    assert sink.redis_prefix != USERS_OWN["SEGMENTER_REDIS_PREFIX"]

"""Sinks that run older definitions than the workers: a change of a segment they do
not know, made under other definitions, is dead-lettered (not dropped), and redrive,
with the new definitions, runs that segment's actions."""
from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import orjson
import pytest

from rules import load_definitions
from sinks import kafka
from sinks.app import prepare
from sinks.deadletter import publish
from sinks.processor import ChangeProcessor
from sinks.redrive import redrive
from sinks.registry import close_all, start_all
from sinks.settings import SinkSettings
from stream.broker import EmbeddedBroker
from stream.settings import Settings

OLD = """
segments:
  loyalty:
    when: "true"
    on_enter: [{webhook: {destination: crm}}]
destinations:
  crm: {type: webhook, url: "${TEST_CRM_URL}", secret: "${TEST_CRM_SECRET}", timeout: 2}
"""
NEW = OLD.replace("destinations:", """  vip:
    when: "true"
    on_enter: [{webhook: {destination: crm}}]
destinations:""")


def change(segment: str, definition: str, customer: str = "c-1") -> bytes:
    return orjson.dumps({"customer_id": customer, "segment": segment, "change": "enter", "seq": 1,
                         "at": "2026-11-20T10:00:00Z", "cause": "e-1", "holdout": False, "definition": definition})


def folder(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).mkdir()
    (tmp_path / name / "segments.yaml").write_text(text)
    return tmp_path / name


async def test_changes_of_newer_definitions_are_dead_lettered_then_redriven(
        broker: EmbeddedBroker, tmp_path: Path, redis_url: str, prefix: str, hook_server,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CRM_URL", hook_server.url)
    monkeypatch.setenv("TEST_CRM_SECRET", hook_server.secret)
    old, new = folder(tmp_path, "old", OLD), folder(tmp_path, "new", NEW)
    run = uuid.uuid4().hex[:8]
    settings = Settings(brokers=[broker.url], segments=old, changes_topic=f"changes-{run}", partitions=1,
                        rebalance_timeout=0.5, session_timeout=2.0)
    sink = SinkSettings(redis_url=redis_url, redis_prefix=prefix, sink_dlq_topic=f"sink-dlq-{run}",
                        redrive_group=f"redrive-{run}", templates=tmp_path / "templates", max_retries=1,
                        retry_base=0.01)
    prepared = prepare(settings, sink)
    newer = load_definitions(new).version
    processor = ChangeProcessor(prepared.definitions, prepared.dispatcher, prepared.stats)
    dead = await processor.process([change("vip", newer), change("gone", prepared.definitions.version, "c-2")])
    await close_all(prepared.sinks, prepared.context)
    # The segment of newer definitions is kept; one removed under these very definitions is not.
    assert [(d.delivery.change.segment, d.delivery.action.kind) for d in dead] == [("vip", "unresolved")]
    assert "restart the sinks with the definitions the workers run" in dead[0].error
    assert hook_server.received == []

    await kafka.ensure_topics(settings, [sink.sink_dlq_topic])
    producer = kafka.producer(settings)
    await producer.start()
    try:
        await publish(producer, sink.sink_dlq_topic, dead)
    finally:
        await producer.stop()

    restarted = prepare(dataclasses.replace(settings, segments=new), sink)
    await start_all(restarted.sinks, restarted.context)
    try:
        report = await redrive(settings, sink, restarted.dispatcher, idle=1.0, definitions=restarted.definitions)
    finally:
        await close_all(restarted.sinks, restarted.context)
    assert (report.read, report.redriven, report.dead_again, report.unknown_segment) == (1, 1, 0, 0)
    assert [orjson.loads(body)["segment"] for _, body in hook_server.received] == ["vip"]

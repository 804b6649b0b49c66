"""`segmenter sinks` and `segmenter redrive` through the embedded Kafka-compatible broker.

Change events are produced to a changes topic; the sinks consume them in their own
group and carry out group, pricing, webhook and CSV actions against real servers. The
webhook is down past the retries: its actions land in the sink dead-letter topic, and
redrive delivers them once it is back. Offsets are committed only after the effects:
a restarted sinks process finds nothing left to do.
"""
from __future__ import annotations

import asyncio
import dataclasses
import csv
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry, generate_latest

from sinks.app import prepare
from sinks.processor import ChangeProcessor
from sinks.redrive import redrive
from sinks.registry import close_all, start_all
from sinks.runner import SinksRunner
from sinks.settings import SinkSettings
from sinks.stats import SinkStats, StatsCollector
from stream.broker import EmbeddedBroker
from stream.settings import Settings
from streams import SEGMENTS_YAML, clean_stream, expected_state, redis_state

EXTRA = """
  backordered:
    when: "true"
    on_enter: [{export: {destination: backorders}}, {webhook: {destination: crm}}]
    on_exit: [{webhook: {destination: crm}}]
"""
DESTINATIONS = """
  crm: {type: webhook, url: "${TEST_CRM_URL}", secret: "${TEST_CRM_SECRET}", timeout: 2}
  backorders: {type: csv, path: "${TEST_EXPORT_DIR}/backordered.csv"}
"""


def backorder_changes(count: int) -> list[dict]:
    changes = []
    for number in range(count):
        for seq, kind in ((1, "enter"), (2, "exit")):
            changes.append({"customer_id": f"b-{number}", "segment": "backordered", "change": kind, "seq": seq,
                            "at": f"2026-02-01T00:{number:02d}:0{seq}Z", "cause": f"o-{number}-{seq}",
                            "holdout": False, "definition": "test"})
    return changes


async def produce(bootstrap: str, topic: str, changes: list[dict]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        sends = [await producer.send(topic, orjson.dumps(c), key=c["customer_id"].encode()) for c in changes]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def send_tombstone(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, None, key=b"c-tombstone")
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, settle: float = 1.0) -> list[dict]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    found: list[dict] = []
    try:
        await consumer.topics()
        consumer.assign([TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())])
        await consumer.seek_to_beginning()
        last = time.monotonic()
        while time.monotonic() - last < settle:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                found += [orjson.loads(record.value) for record in records]
                last = time.monotonic()
    finally:
        await consumer.stop()
    return found


async def run_sinks(settings: Settings, sink: SinkSettings, expect_changes: int, timeout: float = 45.0):
    """A sinks process in this loop until it has read `expect_changes` change events."""
    prepared = prepare(settings, sink)
    await start_all(prepared.sinks)
    processor = ChangeProcessor(prepared.definitions, prepared.dispatcher, prepared.stats)
    runner = SinksRunner(settings, sink, processor, prepared.stats)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    deadline = time.monotonic() + timeout
    try:
        while prepared.stats.get("changes") < expect_changes and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.05)
        while expect_changes == 0 and not (runner.consumer and runner.consumer.assignment()):
            await asyncio.sleep(0.05)  # joined the group...
        if expect_changes == 0:
            await asyncio.sleep(1.0)  # ...and found nothing to read
    finally:
        stop.set()
        await task
        await close_all(prepared.sinks, prepared.context)
    return prepared.stats


async def test_sinks_and_redrive_through_kafka(broker: EmbeddedBroker, tmp_path: Path, redis_url: str, prefix: str,
                                               hook_server, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "segments"
    folder.mkdir()
    text = SEGMENTS_YAML.replace("tiers:", EXTRA.strip("\n") + "\ntiers:", 1) + DESTINATIONS
    (folder / "segments.yaml").write_text(text)
    monkeypatch.setenv("TEST_CRM_URL", hook_server.url)
    monkeypatch.setenv("TEST_CRM_SECRET", hook_server.secret)
    monkeypatch.setenv("TEST_EXPORT_DIR", str(tmp_path / "exports"))
    run = uuid.uuid4().hex[:8]
    # A short rebalance timeout: the broker waits that long for other members at every group join.
    settings = Settings(brokers=[broker.url], segments=folder, changes_topic=f"changes-{run}", partitions=3,
                        rebalance_timeout=0.5, session_timeout=2.0)
    sink = SinkSettings(redis_url=redis_url, redis_prefix=prefix, sink_dlq_topic=f"sink-dlq-{run}",
                        sinks_group=f"sinks-{run}", redrive_group=f"redrive-{run}", templates=tmp_path / "templates",
                        max_retries=2, retry_base=0.02, sink_batch=200)
    redis_stream = clean_stream(customers=80, steps=8, seed=21)
    backorders = backorder_changes(10)
    await produce(broker.bootstrap, settings.changes_topic, redis_stream[:150] + backorders + redis_stream[150:])
    total = len(redis_stream) + len(backorders)

    hook_server.down = True  # the CRM is down for the whole first run
    stats = await run_sinks(settings, sink, total)
    assert stats.get("changes") == total
    prepared = prepare(settings, sink)
    assert redis_state(redis_url, prefix) == expected_state(prepared.definitions, redis_stream, prefix)
    with (tmp_path / "exports" / "backordered.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["customer_id", "segment", "change", "seq", "at", "cause"]
    entered = [c for c in backorders if c["change"] == "enter"]  # the export runs on enter only
    assert sorted((row[0], row[3]) for row in rows[1:]) == sorted((c["customer_id"], str(c["seq"])) for c in entered)

    letters = await read_topic(broker.bootstrap, sink.sink_dlq_topic)
    assert len(letters) == len(backorders) and hook_server.received == []
    assert all(letter["destination"] == "crm" and letter["action"]["kind"] == "webhook" for letter in letters)
    assert {letter["attempts"] for letter in letters} == {3}
    assert set(letters[0]) == {"change", "action", "destination", "error", "attempts", "failed_at"}

    metrics = sink_metrics_text(stats)
    assert exposed_names(metrics) == contract_names()
    assert f'segmenter_sink_delivery_seconds_count{{destination="crm"}} {float(len(backorders))}' in metrics
    promtool = shutil.which("promtool")
    if promtool is not None:
        checked = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr

    hook_server.down = False
    await send_tombstone(broker.bootstrap, sink.sink_dlq_topic)  # a null value stopped redrive with a TypeError
    hook_server.delay = 1.5  # each batch of 5 takes longer than --idle: that is work, not idle time
    report = await redrive(settings, dataclasses.replace(sink, sink_batch=5), prepared.dispatcher, idle=1.0)
    hook_server.delay = 0.0
    assert (report.read, report.redriven, report.dead_again) == (len(backorders) + 1, len(backorders), 0)
    assert report.unreadable == 1
    delivered = [orjson.loads(body) for _, body in hook_server.received]
    assert sorted((c["customer_id"], c["seq"]) for c in delivered) == sorted((c["customer_id"], c["seq"]) for c in backorders)
    for customer in {c["customer_id"] for c in backorders}:  # each customer's enter before its exit
        assert [c["seq"] for c in delivered if c["customer_id"] == customer] == [1, 2]
    again = await redrive(settings, sink, prepared.dispatcher, idle=1.0)  # offsets were committed
    assert again.read == 0
    await close_all(prepared.sinks, prepared.context)

    # A restarted sinks process resumes after the committed offsets: nothing is done twice.
    restarted = await run_sinks(settings, sink, 0)
    assert restarted.get("changes") == 0 and restarted.get("deliveries") == 0


def sink_metrics_text(stats: SinkStats) -> str:
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats))
    return generate_latest(registry).decode()


def exposed_names(text: str) -> set[str]:
    return {line.split()[2].removesuffix("_total") for line in text.splitlines() if line.startswith("# TYPE ")}


def contract_names() -> set[str]:
    """The sinks part of deploy/metrics.txt, which the dashboard and alerts are built on."""
    lines = (Path(__file__).parents[2] / "deploy" / "metrics.txt").read_text().splitlines()
    return {line.split()[0].removesuffix("_total") for line in lines
            if line.strip() and not line.startswith("#") and line.split()[-1] == "sinks"}
